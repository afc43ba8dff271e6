/* The floor of any launcher: a program that does nothing but exec its
 * argument vector's tail (here /bin/true). Built by bench/run.sh with cc. */
#include <unistd.h>
int main(int argc, char **argv) {
  (void)argc;
  execv(argv[1], argv + 1);
  return 111;
}
