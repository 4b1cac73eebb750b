//! Whole files read and written in one call each. In a WASI component, std's
//! `fs::write` goes through a stream 4 KB per host call (wasi-libc's writes);
//! here a file is written with one `descriptor.write` at its offset, and read
//! with one `descriptor.read` of its size. Outside wasm32, std does it all.

use std::io;
use std::path::Path;

/// Writes `bytes` to the file at `path` (made, or emptied first); its folder must exist.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    #[cfg(target_arch = "wasm32")]
    if let Some(result) = wasi::write(path, bytes) {
        return result;
    }
    std::fs::write(path, bytes)
}

/// The bytes of the file at `path`.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    if let Some(result) = wasi::read(path) {
        return result;
    }
    std::fs::read(path)
}

/// The text of the file at `path`.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    #[cfg(target_arch = "wasm32")]
    if let Some(result) = wasi::read(path) {
        return result.and_then(|bytes| {
            String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        });
    }
    std::fs::read_to_string(path)
}

#[cfg(target_arch = "wasm32")]
mod wasi {
    use std::io;
    use std::path::Path;
    use wasip2::filesystem::preopens;
    use wasip2::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};

    thread_local! {
        /// The preopened folders (`/fetch`, `/web`…), asked for once.
        static PREOPENS: Vec<(Descriptor, String)> = preopens::get_directories();
    }

    fn error(code: ErrorCode) -> io::Error {
        let kind = match code {
            ErrorCode::NoEntry => io::ErrorKind::NotFound,
            ErrorCode::Access | ErrorCode::NotPermitted => io::ErrorKind::PermissionDenied,
            ErrorCode::Exist => io::ErrorKind::AlreadyExists,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, format!("{code:?}"))
    }

    /// Opens `path` under the preopen that holds it; `None` if none does.
    fn open(
        path: &Path,
        open: OpenFlags,
        flags: DescriptorFlags,
    ) -> Option<io::Result<Descriptor>> {
        let path = path.to_str()?;
        PREOPENS.with(|preopens| {
            preopens.iter().find_map(|(dir, name)| {
                let rel = path.strip_prefix(name.as_str())?.strip_prefix('/')?;
                Some(
                    dir.open_at(PathFlags::empty(), rel, open, flags)
                        .map_err(error),
                )
            })
        })
    }

    pub fn write(path: &Path, bytes: &[u8]) -> Option<io::Result<()>> {
        let file = open(
            path,
            OpenFlags::CREATE | OpenFlags::TRUNCATE,
            DescriptorFlags::WRITE,
        )?;
        Some(file.and_then(|file| {
            let mut done = 0;
            while done < bytes.len() {
                let n = file.write(&bytes[done..], done as u64).map_err(error)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing"));
                }
                done += n as usize;
            }
            Ok(())
        }))
    }

    pub fn read(path: &Path) -> Option<io::Result<Vec<u8>>> {
        let file = open(path, OpenFlags::empty(), DescriptorFlags::READ)?;
        Some(file.and_then(|file| {
            let size = file.stat().map_err(error)?.size;
            let mut bytes = Vec::with_capacity(size as usize);
            loop {
                let (chunk, end) = file
                    .read(size.max(4096), bytes.len() as u64)
                    .map_err(error)?;
                bytes.extend_from_slice(&chunk);
                if end || chunk.is_empty() {
                    return Ok(bytes);
                }
            }
        }))
    }
}
