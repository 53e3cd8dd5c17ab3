//! Real proxies for the forward-auth end-to-end tests (`tests/proxies.rs`)
//! and the load benchmark (`benches/load.rs`): Debian's nginx started from
//! a temporary folder on a loopback port, with a recipe exactly as
//! docs/forward-auth.md prints it.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOC: &str = include_str!("../../docs/forward-auth.md");

/// The recipe for `proxy` as docs/forward-auth.md prints it: the first code
/// block after its `<!-- recipe: … -->` marker.
pub fn recipe(proxy: &str) -> String {
    let marker = format!("<!-- recipe: {proxy} ");
    let start = DOC
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/forward-auth.md has no {marker}"));
    let rest = &DOC[start..];
    let fence = rest.find("```").unwrap();
    let body = &rest[fence..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").unwrap()].to_owned() + "\n"
}

/// Where a program is, looking in `PATH` and the `sbin` folders.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    pub fn wait_until_listening(mut self, name: &str) -> Proxy {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(self.addr).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{name} exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "{name} did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        self
    }
}

/// The placeholders of the recipes, as this run has them.
pub fn fill(recipe: &str, tokenward: SocketAddr, upstream: SocketAddr, workspace: &str) -> String {
    assert!(recipe.contains("127.0.0.1:8080") && recipe.contains("127.0.0.1:3000"));
    recipe
        .replace("127.0.0.1:8080", &tokenward.to_string())
        .replace("127.0.0.1:3000", &upstream.to_string())
        .replace("<workspace-id>", workspace)
}

pub fn start_nginx(program: &Path, dir: &Path, site: &str) -> Proxy {
    let port = free_port();
    assert!(site.contains("listen 80;"));
    let site = site.replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
    let d = dir.display();
    let config = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{ worker_connections 4096; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\n{site}}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let log = dir.join("error.log");
    let child = Command::new(program)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(&log)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("nginx starts");
    Proxy {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
    }
    .wait_until_listening("nginx")
}
