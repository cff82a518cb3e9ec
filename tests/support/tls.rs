//! Servers that require TLS, for the security tests: certificates made by
//! the test (the `openssl` command), a Postgres cluster of the test's own
//! with `ssl = on` and only `hostssl` lines, and tansu reachable only
//! through a TLS terminator (socat) that asks for a client certificate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Broker, free_port, unique};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn needs(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} not found: run scripts/test (it installs {package}) or apt-get install {package}"
    );
}

/// A directory of keys and certificates, removed on drop: a CA that the
/// clients trust, another that they do not, server certificates for
/// `localhost` and 127.0.0.1 and for another name, and a client
/// certificate.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(client: &str) -> Pki {
        needs("openssl", "openssl");
        let dir = std::env::temp_dir().join(unique("outreach-pki"));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        pki.ca("ca");
        pki.ca("other-ca");
        pki.signed(
            "server",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        );
        // Postgres': reached as localhost only, so 127.0.0.1 is a mismatch.
        pki.signed("pg", "localhost", "subjectAltName=DNS:localhost");
        pki.signed(
            "elsewhere",
            "elsewhere.invalid",
            "subjectAltName=DNS:elsewhere.invalid",
        );
        pki.signed("client", client, "extendedKeyUsage=clientAuth");
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `name.pem` and `name.key` as one file, as socat takes them.
    pub fn combined(&self, name: &str) -> PathBuf {
        let path = self.path(&format!("{name}.both.pem"));
        let mut both = std::fs::read(self.path(&format!("{name}.pem"))).unwrap();
        both.extend(std::fs::read(self.path(&format!("{name}.key"))).unwrap());
        std::fs::write(&path, both).unwrap();
        path
    }

    fn key(&self, name: &str) -> PathBuf {
        let key = self.path(&format!("{name}.key"));
        run(Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&key));
        set_mode(&key, 0o600);
        key
    }

    fn ca(&self, name: &str) {
        let key = self.key(name);
        run(Command::new("openssl")
            .args(["req", "-x509", "-new", "-days", "2", "-subj"])
            .arg(format!("/CN=outreach test {name}"))
            .arg("-key")
            .arg(&key)
            .arg("-out")
            .arg(self.path(&format!("{name}.pem"))));
    }

    fn signed(&self, name: &str, cn: &str, extension: &str) {
        let key = self.key(name);
        let csr = self.path(&format!("{name}.csr"));
        run(Command::new("openssl")
            .args(["req", "-new", "-subj"])
            .arg(format!("/CN={cn}"))
            .arg("-key")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        let ext = self.path(&format!("{name}.ext"));
        std::fs::write(&ext, format!("{extension}\n")).unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(self.path("ca.pem"))
            .arg("-CAkey")
            .arg(self.path("ca.key"))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(self.path(&format!("{name}.pem"))));
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether this process runs as root (then Postgres runs as `postgres`).
fn root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A Postgres cluster of the test's own on a free port, stopped and removed
/// on drop. With `tls`, it accepts only TLS (`hostssl` lines): `cert`
/// authentication for the client certificate's user, passwords (SCRAM) for
/// the rest. Without, it has no TLS at all.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// The superuser `postgres`'s password.
    pub password: String,
}

impl PgCluster {
    pub fn start(pki: &Pki, tls: bool, cert_user: &str) -> PgCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL under /usr/lib/postgresql (scripts/test installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = std::env::temp_dir().join(unique("outreach-pg"));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).unwrap();
        let password = unique("pw");
        std::fs::write(dir.join("pwfile"), &password).unwrap();
        let cluster = PgCluster {
            dir: dir.clone(),
            bin,
            port: free_port(),
            password,
        };
        if root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir));
        }
        cluster.as_postgres(
            Command::new(cluster.bin.join("initdb"))
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ])
                .arg("--pwfile")
                .arg(dir.join("pwfile"))
                .arg("-D")
                .arg(&data),
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\n",
            cluster.port,
            dir.display()
        );
        let hba = if tls {
            for (from, to) in [("pg.pem", "server.crt"), ("pg.key", "server.key")] {
                std::fs::copy(pki.path(from), data.join(to)).unwrap();
            }
            std::fs::copy(pki.path("ca.pem"), data.join("ca.pem")).unwrap();
            set_mode(&data.join("server.key"), 0o600);
            if root() {
                run(Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data));
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.pem'\n");
            format!(
                "local all all trust\nhostssl all {cert_user} 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
            )
        } else {
            conf.push_str("ssl = off\n");
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n".to_owned()
        };
        let mut file = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        file.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), file).unwrap();
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        cluster.as_postgres(
            Command::new(cluster.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-w", "-t", "30", "start"]),
        );
        cluster.psql(&format!("CREATE ROLE {cert_user} LOGIN"));
        cluster.psql("CREATE DATABASE outreach");
        cluster
    }

    fn as_postgres(&self, cmd: &mut Command) {
        if root() {
            let program = cmd.get_program().to_owned();
            let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
            run(Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args));
        } else {
            run(cmd);
        }
    }

    /// Runs SQL as the superuser over the Unix socket.
    pub fn psql(&self, sql: &str) {
        self.as_postgres(
            Command::new(self.bin.join("psql"))
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(&self.dir)
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    sql,
                ]),
        );
    }

    /// `postgres://USER[:PASSWORD]@HOST:PORT/outreach?QUERY`.
    pub fn url(&self, user: &str, password: Option<&str>, host: &str, query: &str) -> String {
        let secret = password.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "postgres://{user}{secret}@{host}:{}/outreach?{query}",
            self.port
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let stop = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if stop.is_err() || !root() {
            let _ = Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "immediate", "stop"])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS terminator (socat) on a free port of 127.0.0.1 in front of
/// `target`, presenting `cert` (a [`Pki`] name) and, with `client_ca`,
/// requiring a client certificate signed by it. Killed on drop.
pub struct Terminator {
    child: Child,
    pub addr: String,
}

impl Terminator {
    pub fn start(pki: &Pki, cert: &str, require_client: bool, target: &str) -> Terminator {
        needs("socat", "socat");
        let port = free_port();
        let verify = if require_client {
            format!("cafile={},verify=1", pki.path("ca.pem").display())
        } else {
            "verify=0".to_owned()
        };
        let child = Command::new("socat")
            .arg(format!(
                "openssl-listen:{port},bind=127.0.0.1,reuseaddr,fork,cert={},{verify}",
                pki.combined(cert).display()
            ))
            .arg(format!("tcp:{target}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat starts");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "socat did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Terminator { child, addr }
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tansu reached only through TLS: it advertises a terminator that asks
/// for a client certificate, so every client connection after the first
/// goes there. Its own plaintext port (`plain`) is for the test's set-up.
pub struct TlsBroker {
    pub broker: Broker,
    pub tls: Terminator,
    pub plain: String,
}

impl TlsBroker {
    pub fn start(pki: &Pki) -> TlsBroker {
        let port = free_port();
        let plain = format!("127.0.0.1:{port}");
        // The terminator's port must be known before tansu starts, to be
        // advertised; socat only connects onwards per client.
        let tls = Terminator::start(pki, "server", true, &plain);
        let broker = Broker::spawn(port, &tls.addr);
        TlsBroker { broker, tls, plain }
    }
}
