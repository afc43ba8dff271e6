//! djb's constant database (cdb.cr.yp.to/cdb.html), the format of both
//! tcprules' and ipsvd-cdb's rules: reading its records in file order and
//! writing one as `cdbmake` does. Layout: a 2048-byte header of 256
//! (position, slots) pairs of little-endian u32, the records (key length,
//! data length, key, data), then 256 hash tables of (hash, position) slots.

/// One record: key and data bytes.
pub type Record = (Vec<u8>, Vec<u8>);

/// djb's cdb hash.
pub fn hash(key: &[u8]) -> u32 {
    key.iter().fold(5381u32, |h, &c| {
        (h.wrapping_shl(5).wrapping_add(h)) ^ u32::from(c)
    })
}

fn u32_at(data: &[u8], i: usize) -> Option<usize> {
    let b = data.get(i..i.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
}

/// The records of a cdb in file order. The records end where the first
/// hash table starts; this does not verify the hash tables (the
/// well-formedness check does that), only that every record lies inside.
pub fn records(data: &[u8]) -> Result<Vec<Record>, String> {
    if data.len() < 2048 {
        return Err(format!(
            "{} bytes, shorter than the 2048-byte header",
            data.len()
        ));
    }
    let end = (0..256)
        .map(|i| u32_at(data, i * 8).unwrap_or(0))
        .min()
        .unwrap_or(2048);
    if end < 2048 || end > data.len() {
        return Err(format!("a hash table starts at {end}, outside the file"));
    }
    let mut out = Vec::new();
    let mut p = 2048;
    while p < end {
        let (Some(klen), Some(dlen)) = (u32_at(data, p), u32_at(data, p + 4)) else {
            return Err(format!("the record at {p} is cut short"));
        };
        let k = p + 8;
        let d = k.saturating_add(klen);
        let next = d.saturating_add(dlen);
        if next > end {
            return Err(format!(
                "the record at {p} runs past the end of the records ({end})"
            ));
        }
        out.push((data[k..d].to_vec(), data[d..next].to_vec()));
        p = next;
    }
    Ok(out)
}

/// Is `data` a well-formed cdb: every hash table inside the file, every
/// record inside the records, every slot pointing at a record whose key
/// hashes to it, every record in a table (`--check` of the rules a front
/// end reads)? Returns the number of records, or what is wrong.
pub fn verify(data: &[u8]) -> Result<usize, String> {
    let len = data.len() as u64;
    if len < 2048 {
        return Err(format!("{len} bytes, shorter than the 2048-byte header"));
    }
    if len > u64::from(u32::MAX) {
        return Err("larger than 4 GiB".into());
    }
    let at = |i: u64| -> u64 {
        let i = i as usize;
        u64::from(u32::from_le_bytes(
            data[i..i + 4].try_into().expect("4 bytes"),
        ))
    };
    let mut tables = Vec::with_capacity(256);
    let mut end_of_records = len;
    for i in 0..256 {
        let (pos, slots) = (at(i * 8), at(i * 8 + 4));
        if pos < 2048 || pos > len {
            return Err(format!(
                "hash table {i} starts at {pos}, outside the file ({len} bytes)"
            ));
        }
        if pos + slots * 8 > len {
            return Err(format!(
                "hash table {i} ({slots} slots at {pos}) runs past the end of the file"
            ));
        }
        end_of_records = end_of_records.min(pos);
        tables.push((pos, slots));
    }
    let mut starts = std::collections::HashSet::new();
    let mut p = 2048;
    while p < end_of_records {
        if p + 8 > end_of_records {
            return Err(format!("the record at {p} is cut short"));
        }
        let end = p + 8 + at(p) + at(p + 4);
        if end > end_of_records {
            return Err(format!(
                "the record at {p} runs past the end of the records ({end_of_records})"
            ));
        }
        starts.insert(p);
        p = end;
    }
    let mut indexed = 0;
    for (i, &(pos, slots)) in tables.iter().enumerate() {
        for s in 0..slots {
            let (h, rec) = (at(pos + s * 8), at(pos + s * 8 + 4));
            if rec == 0 {
                continue;
            }
            if !starts.contains(&rec) {
                return Err(format!(
                    "hash table {i} points at {rec}, which is not a record"
                ));
            }
            let klen = at(rec);
            let key = &data[(rec + 8) as usize..(rec + 8 + klen) as usize];
            if u64::from(hash(key)) != h || h % 256 != i as u64 {
                return Err(format!(
                    "the record at {rec} is in the wrong hash table slot"
                ));
            }
            indexed += 1;
        }
    }
    if indexed != starts.len() {
        return Err(format!(
            "{} records, but {indexed} in the hash tables",
            starts.len()
        ));
    }
    Ok(starts.len())
}

/// A cdb holding `records` in the given order, laid out as cdbmake (and so
/// tcprules and ipsvd-cdb) lays it out: the same input gives the same bytes.
pub fn write(records: &[Record]) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    let mut entries: Vec<(u32, u32)> = Vec::with_capacity(records.len());
    for (k, d) in records {
        entries.push((hash(k), out.len() as u32));
        out.extend((k.len() as u32).to_le_bytes());
        out.extend((d.len() as u32).to_le_bytes());
        out.extend(k);
        out.extend(d);
    }
    for i in 0..256u32 {
        let mine: Vec<(u32, u32)> = entries
            .iter()
            .copied()
            .filter(|(h, _)| h % 256 == i)
            .collect();
        let slots = mine.len() * 2;
        let pos = out.len() as u32;
        let at = (i * 8) as usize;
        out[at..at + 4].copy_from_slice(&pos.to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&(slots as u32).to_le_bytes());
        let mut table = vec![(0u32, 0u32); slots];
        for (h, p) in mine {
            let mut j = ((h >> 8) as usize) % slots;
            while table[j].1 != 0 {
                j = (j + 1) % slots;
            }
            table[j] = (h, p);
        }
        for (h, p) in table {
            out.extend(h.to_le_bytes());
            out.extend(p.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let recs: Vec<Record> = vec![
            (b"127.".to_vec(), b"D".to_vec()),
            (b"".to_vec(), b"+A=1\0".to_vec()),
            (b"10.0.0.1".to_vec(), b"+".to_vec()),
        ];
        let bytes = write(&recs);
        assert_eq!(records(&bytes).unwrap(), recs);
        assert_eq!(records(&write(&[])).unwrap(), Vec::<Record>::new());
        assert!(records(&bytes[..100]).unwrap_err().contains("shorter"));
        let mut bad = bytes.clone();
        bad[2048] = 0xff; // first key length: past the records
        assert!(records(&bad).unwrap_err().contains("runs past"));
    }

    /// Byte-identical to what the real tcprules writes for the same records.
    #[test]
    fn same_bytes_as_tcprules() {
        let Some(dir) = crate::frontend::tests_support::tempdir("cdb") else {
            return;
        };
        if !crate::frontend::tests_support::have("tcprules") {
            return;
        }
        let cdb = dir.join("t.cdb");
        let out = std::process::Command::new("tcprules")
            .arg(&cdb)
            .arg(dir.join("t.tmp"))
            .stdin(
                std::fs::File::open({
                    let src = dir.join("t.rules");
                    std::fs::write(
                        &src,
                        "127.0.0.1:deny\n10.:allow,A=\"1\",B=\"x y\"\n:allow\n",
                    )
                    .unwrap();
                    src
                })
                .unwrap(),
            )
            .status()
            .unwrap();
        assert!(out.success());
        let real = std::fs::read(&cdb).unwrap();
        let recs = records(&real).unwrap();
        assert_eq!(
            recs,
            vec![
                (b"127.0.0.1".to_vec(), b"D\0".to_vec()),
                (b"10.".to_vec(), b"+A=1\0+B=x y\0".to_vec()),
                (b"".to_vec(), b"".to_vec()),
            ]
        );
        assert_eq!(write(&recs), real);
        let _ = std::fs::remove_dir_all(dir);
    }
}
