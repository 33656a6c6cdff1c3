//! The CA on disk: `<data dir>/ca/ca.crt` and `ca.key`, the directory mode 0700 and the
//! key file mode 0600, each file written atomically (temporary file, fsync, rename,
//! fsync of the directory) so a crash never leaves half a key.
//!
//! Creation writes the key first and the certificate last: a key without a certificate
//! is an interrupted creation (nothing was ever signed with it) and is replaced; a
//! certificate without its key is an error the operator must resolve.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind as IoErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::ca::{CertificateAuthority, ROOT_VALIDITY};
use crate::error::{Error, Result};

pub const CA_DIR: &str = "ca";
pub const CERT_FILE: &str = "ca.crt";
pub const KEY_FILE: &str = "ca.key";

const DIR_MODE: u32 = 0o700;
const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;
/// Larger files are not a key or certificate this crate would read.
const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// A CA loaded from, or just created in, a data directory.
#[derive(Debug)]
pub struct StoredAuthority {
    pub authority: CertificateAuthority,
    /// True when this call created the root (first start on this data dir).
    pub created: bool,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// The CA of `data_dir`: loads `ca/ca.crt` + `ca/ca.key`, or creates a new root for
/// `trust_domain` when there is none (and `data_dir` itself, mode 0700, if missing). Refuses a directory or key file that other users
/// can read, and a stored root of another trust domain.
pub fn load_or_create(
    data_dir: &Path,
    trust_domain: &str,
    now: SystemTime,
) -> Result<StoredAuthority> {
    if !exists(data_dir)? {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(data_dir)
            .map_err(|e| io_error(data_dir, "cannot create", &e))?;
    }
    let dir = data_dir.join(CA_DIR);
    ensure_private_dir(&dir)?;
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let cert_exists = exists(&cert_path)?;
    let key_exists = exists(&key_path)?;
    if cert_exists && !key_exists {
        return Err(Error::io(format!(
            "{}: missing, but {} exists: restore the key from a backup (or move both away to create a new root)",
            key_path.display(),
            cert_path.display()
        )));
    }
    if cert_exists {
        check_private_file(&key_path)?;
        let authority = load_files(&cert_path, &key_path, trust_domain).map_err(|e| {
            if e.message().contains("trust domain") {
                Error::invalid(format!(
                    "{}: {}; start with that --trust-domain, or use another --data-dir",
                    dir.display(),
                    e.message()
                ))
            } else {
                e
            }
        })?;
        return Ok(StoredAuthority {
            authority,
            created: false,
            cert_path,
            key_path,
        });
    }
    let authority = CertificateAuthority::create_root(trust_domain, ROOT_VALIDITY, now)?;
    write_atomically(&key_path, authority.private_key_pem().as_bytes(), KEY_MODE)?;
    write_atomically(
        &cert_path,
        authority.certificate_pem().as_bytes(),
        CERT_MODE,
    )?;
    Ok(StoredAuthority {
        authority,
        created: true,
        cert_path,
        key_path,
    })
}

/// A CA from an operator's files (`--ca-cert`, `--ca-key`). The certificate file may
/// hold the CA's issuers after its own certificate.
pub fn load_files(
    cert_path: &Path,
    key_path: &Path,
    trust_domain: &str,
) -> Result<CertificateAuthority> {
    let cert_pem = read_pem_file(cert_path)?;
    let key_pem = zeroize::Zeroizing::new(read_pem_file(key_path)?);
    CertificateAuthority::from_pem(&cert_pem, &key_pem, trust_domain).map_err(|e| {
        let file = if e.message().starts_with("CA key") {
            key_path
        } else {
            cert_path
        };
        e.context(file.display())
    })
}

/// Reads a PEM file of reasonable size as UTF-8.
pub fn read_pem_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| io_error(path, "cannot read", &e))?;
    let size = file
        .metadata()
        .map_err(|e| io_error(path, "cannot read", &e))?
        .len();
    if size > MAX_PEM_FILE_BYTES {
        return Err(Error::invalid(format!(
            "{}: {size} bytes; expected a PEM file of at most {MAX_PEM_FILE_BYTES}",
            path.display()
        )));
    }
    let bytes = fs::read(path).map_err(|e| io_error(path, "cannot read", &e))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::invalid(format!("{}: not a PEM text file", path.display())))
}

fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == IoErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(path, "cannot inspect", &e)),
    }
}

/// Creates `dir` with mode 0700, or checks an existing one is a directory of ours that
/// others cannot enter.
fn ensure_private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {
            // The umask may have narrowed the mode further, never widened it; make it exact.
            fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
                .map_err(|e| io_error(dir, "cannot set the mode of", &e))?;
            sync_dir(dir.parent().unwrap_or(Path::new(".")))
        }
        Err(e) if e.kind() == IoErrorKind::AlreadyExists => {
            let meta =
                fs::symlink_metadata(dir).map_err(|e| io_error(dir, "cannot inspect", &e))?;
            if !meta.is_dir() {
                return Err(Error::io(format!("{}: not a directory", dir.display())));
            }
            check_mode(dir, meta.mode(), "700")
        }
        Err(e) => Err(io_error(dir, "cannot create", &e)),
    }
}

fn check_private_file(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(|e| io_error(path, "cannot inspect", &e))?;
    if !meta.is_file() {
        return Err(Error::io(format!("{}: not a regular file", path.display())));
    }
    check_mode(path, meta.mode(), "600")
}

/// Refuses group or other permission bits, and an owner other than this process's user.
fn check_mode(path: &Path, mode: u32, fix: &str) -> Result<()> {
    let mode = mode & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::io(format!(
            "{}: mode {mode:04o} lets other users read the CA key; run `chmod {fix} {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Writes `contents` to `path` via a temporary file created with `mode`, fsynced,
/// renamed over `path`, then fsyncs the directory.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp"));
    // A leftover from a crash: it was never renamed into place, so nothing uses it.
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == IoErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&temp, "cannot remove", &e)),
    }
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .map_err(|e| io_error(&temp, "cannot create", &e))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(&temp, "cannot set the mode of", &e))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(&temp, "cannot write", &e))?;
        fs::rename(&temp, path).map_err(|e| io_error(path, "cannot replace", &e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "cannot sync", &e))
}

fn io_error(path: &Path, action: &str, err: &std::io::Error) -> Error {
    let reason = match err.kind() {
        IoErrorKind::NotFound => "not found".to_string(),
        IoErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => err.to_string(),
    };
    Error::io(format!("{}: {action}: {reason}", path.display()))
}
