# Differential check of two courier-run binaries' config readers (used for the
# parse branch): random configs through conf2env, comparing exit code, stderr
# (positions included) and the values written.
# Usage: python3 reader-diff-fuzz.py SEED CASES OLD_BIN NEW_BIN
#        (run in a scratch directory; the two binaries are courier-run builds)
import random, subprocess, os, shutil, sys
random.seed(int(sys.argv[1]))
atoms = ['A','B','_x','A1','=','=','"','"',"'",'\\','\\\n','$','$A','${A}','${B-d}','~',':','#',' ','\t','\n','\n','x','y z','1','OPTIND','export ','. ','*','\r',';','é']
def gen():
    n = random.randint(1, 12)
    lines = []
    for _ in range(random.randint(1,4)):
        w = random.choice(['A=','B=','C="','D=x','# c ','  E=', 'F=\'', ''])
        w += ''.join(random.choice(atoms) for _ in range(random.randint(0, n)))
        lines.append(w)
    return '\n'.join(lines) + random.choice(['\n',''])
diffs = 0; acc = 0
for i in range(int(sys.argv[2])):
    src = gen()
    open('conf','w').write(src)
    out = []
    for b in (os.path.abspath(sys.argv[3]), os.path.abspath(sys.argv[4])):
        d = 'env-%d' % len(out)
        shutil.rmtree(d, ignore_errors=True)
        r = subprocess.run([b,'conf2env',d,'./conf'], capture_output=True, timeout=10, env={'PATH':'/usr/bin:/bin','A':'inh'})
        files = {}
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                if f != '.courier-run':
                    files[f] = open(os.path.join(d,f),'rb').read()
        out.append((r.returncode, r.stderr, files))
    acc += out[0][0] == 0
    if out[0] != out[1]:
        diffs += 1
        print('DIFF', repr(src)); print(out[0]); print(out[1])
        if diffs > 3: break
print("cases", i+1, "diffs", diffs, "accepted", acc)
