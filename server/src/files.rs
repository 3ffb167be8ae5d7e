//! The page: plain `GET` and `HEAD` requests are answered with the page's files from one
//! directory (`--www`: `index.html`, its style and icon, and the built client in `pkg/`).
//!
//! A handful of static files with known types does not need a file-serving framework; what
//! matters is what may be served, and what serving may cost:
//! - only page files: plain path segments ([`resolve`]), no dotfiles, only the types a page
//!   loads (HTML, CSS, JavaScript, wasm, images), so that `.env`, `Cargo.toml` or Rust sources
//!   lying in the directory are never sent;
//! - only regular files inside the directory: the path is resolved through its symlinks and
//!   must stay under the directory, and the file is opened without blocking and checked to be
//!   a regular file before it is read, so a FIFO or a device cannot hang a thread;
//! - each file is read once and then held as shared bytes, read again only when its size or
//!   time changes, so a hundred clients downloading it share one copy and `HEAD` reads
//!   nothing. How long a client may take to read is bounded by `Config::http_timeout`.
//!
//! When the directory has no `favicon.ico`, a built-in one is served, so that browsers do not
//! log a 404 for the icon they ask for.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hyper::body::Bytes;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, HeaderValue};
use hyper::{Method, Request, StatusCode};
use tokio::sync::Mutex;
use tracing::debug;

use crate::response::{HttpResponse, plain, with_type};

/// Larger files are not served: a page's files are small, and each is held in memory.
const MAX_FILE: u64 = 32 << 20;

/// The icon served when the directory has none: 16 x 16, 32-bit.
static FAVICON: &[u8] = include_bytes!("favicon.ico");

/// The page's directory and the files read from it.
#[derive(Debug)]
pub(crate) struct Page {
    root: Option<PathBuf>,
    /// By canonical path: the bytes of each file served, with the size and time they had.
    /// Held while a file is read, so that a burst of requests for it reads it once.
    cache: Mutex<HashMap<PathBuf, Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    len: u64,
    modified: Option<SystemTime>,
    bytes: Bytes,
}

/// A file found and checked, before its bytes are taken.
struct Found {
    file: File,
    canonical: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

impl Page {
    /// The page in `root`; `None` serves no files.
    pub(crate) fn new(root: Option<PathBuf>) -> Self {
        Page {
            root,
            cache: Mutex::default(),
        }
    }

    /// Answers a plain HTTP request with the page file it names.
    pub(crate) async fn respond<B>(&self, request: &Request<B>) -> HttpResponse {
        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
                let allow = HeaderValue::from_static("GET, HEAD");
                response.headers_mut().insert(ALLOW, allow);
                return response;
            }
        };
        let Some((relative, content_type)) = resolve(request.uri().path()) else {
            return not_found();
        };
        let found = match &self.root {
            Some(root) => {
                let (root, name) = (root.clone(), relative.clone());
                tokio::task::spawn_blocking(move || find(&root, &name))
                    .await
                    .ok()
                    .flatten()
            }
            None => None,
        };
        let Some(found) = found else {
            return match relative.to_str() {
                Some("favicon.ico") => answer(Bytes::from_static(FAVICON), content_type, head),
                Some("index.html") => plain(StatusCode::NOT_FOUND, NO_PAGE),
                _ => not_found(),
            };
        };
        if head {
            let mut response = answer(Bytes::new(), content_type, head);
            response
                .headers_mut()
                .insert(CONTENT_LENGTH, found.len.into());
            return response;
        }
        match self.bytes(found).await {
            Some(bytes) => answer(bytes, content_type, head),
            None => not_found(),
        }
    }

    /// The file's bytes: from the cache while its size and time are unchanged, else read
    /// (off the async threads) and cached.
    async fn bytes(&self, found: Found) -> Option<Bytes> {
        let mut cache = self.cache.lock().await;
        let fresh = |cached: &&Cached| cached.len == found.len && cached.modified == found.modified;
        if let Some(cached) = cache.get(&found.canonical).filter(fresh) {
            return Some(cached.bytes.clone());
        }
        let Found {
            mut file,
            canonical,
            len,
            modified,
        } = found;
        let bytes = tokio::task::spawn_blocking(move || {
            let mut contents = Vec::with_capacity(len as usize);
            file.by_ref().take(len).read_to_end(&mut contents).ok()?;
            Some(Bytes::from(contents))
        })
        .await
        .ok()??;
        let cached = Cached {
            len: bytes.len() as u64,
            modified,
            bytes: bytes.clone(),
        };
        cache.insert(canonical, cached);
        Some(bytes)
    }
}

/// What `GET /` says when the directory has no page.
const NO_PAGE: &str = "No page here: this echo server was started without the page's \
    directory. Start it with --www DIR, DIR holding index.html and pkg/. The WebSocket echo \
    works all the same, at ws://HOST:PORT/.\n";

fn not_found() -> HttpResponse {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

fn answer(body: Bytes, content_type: &'static str, head: bool) -> HttpResponse {
    let len = body.len();
    let body = if head { Bytes::new() } else { body };
    let mut response = with_type(body, content_type);
    let headers = response.headers_mut();
    headers.insert(CONTENT_LENGTH, len.into());
    // The page and the wasm change with every build; always revalidate.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Finds `relative` under `root`: a regular file, no larger than [`MAX_FILE`], whose real path
/// (through every symlink) is inside the real `root`. Blocking: runs off the async threads.
fn find(root: &Path, relative: &Path) -> Option<Found> {
    use std::os::unix::fs::OpenOptionsExt;
    let root = root.canonicalize().ok()?;
    let canonical = root.join(relative).canonicalize().ok()?;
    if !canonical.starts_with(&root) {
        debug!(path = %canonical.display(), "refused: outside the page's directory");
        return None;
    }
    // Without blocking: opening a FIFO for reading would wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&canonical)
        .ok()?;
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() || metadata.len() > MAX_FILE {
        debug!(path = %canonical.display(), "refused: not a regular file, or too large");
        return None;
    }
    Some(Found {
        file,
        canonical,
        len: metadata.len(),
        modified: metadata.modified().ok(),
    })
}

/// Maps a URL path to a page file under the root, and its content type; `None` for anything
/// but plain segments (`..`, `.`, empty, backslashes, NUL), for dotfiles, and for types a
/// page does not load. A path ending in `/` names that directory's `index.html`.
fn resolve(url_path: &str) -> Option<(PathBuf, &'static str)> {
    let relative = url_path.strip_prefix('/')?;
    let mut path = PathBuf::new();
    let mut segments = relative.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "" if last => path.push("index.html"),
            "" => return None,
            _ if segment.starts_with('.') || segment.contains(['\\', '\0']) => return None,
            _ => path.push(segment),
        }
    }
    let content_type = content_type(&path)?;
    Some((path, content_type))
}

/// The types of a page's files; anything else is not served.
fn content_type(path: &Path) -> Option<&'static str> {
    Some(match path.extension()?.to_str()? {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        // Browsers compile wasm while it downloads only when it has this type.
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_plain_paths_and_index() {
        let html = "text/html; charset=utf-8";
        assert_eq!(resolve("/"), Some((PathBuf::from("index.html"), html)));
        let (path, kind) = resolve("/pkg/a.js").unwrap();
        assert_eq!(
            (path, kind),
            (PathBuf::from("pkg/a.js"), "text/javascript; charset=utf-8")
        );
        assert_eq!(resolve("/pkg/").unwrap().0, PathBuf::from("pkg/index.html"));
    }

    #[test]
    fn never_leaves_the_root_nor_serves_dotfiles_or_sources() {
        for path in [
            "/../etc/passwd",
            "/pkg/../../x.html",
            "//etc",
            "/a\\b.html",
            "/./a.html",
            "/.env",
            "/.git/config",
            "/pkg/.hidden.js",
            "/Cargo.toml",
            "/src/lib.rs",
            "/pkg/package.json",
            "/README",
            "",
            "x.html",
        ] {
            assert_eq!(resolve(path), None, "{path:?}");
        }
    }
}
