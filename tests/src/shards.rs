//! Shard files on a data folder's disks, and damaging them.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Shard files by segment id, across every disk of the data folder.
pub fn shard_files(data: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for disk in std::fs::read_dir(data.join("disks"))
        .expect("disks")
        .flatten()
    {
        let Ok(dirs) = std::fs::read_dir(disk.path().join("shards")) else {
            continue;
        };
        for d in dirs.flatten() {
            for f in std::fs::read_dir(d.path()).expect("dir").flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let seg = name.split('.').next().unwrap_or_default().to_owned();
                out.entry(seg).or_default().push(f.path());
            }
        }
    }
    out
}

/// Flips one byte a third of the way into a (read-only) shard file.
pub fn flip_byte(p: &Path) {
    use std::os::unix::fs::FileExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .expect("open");
    let at = f.metadata().expect("meta").len() / 3;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read");
    b[0] ^= 0xa5;
    f.write_all_at(&b, at).expect("write");
}
