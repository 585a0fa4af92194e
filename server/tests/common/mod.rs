//! Processes for end-to-end tests: `fathom serve` and `fathom route` started
//! on loopback, their addresses read from the line they print, stopped with
//! SIGTERM (or killed, to play a crash).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:P`
    pub grpc: String,
    /// `127.0.0.1:P`
    pub metrics: String,
}

impl Server {
    /// `fathom serve --index INDEX` on loopback ports.
    pub fn start(index: &Path, env: &[(&str, &str)]) -> Server {
        Self::serve_on(index, "127.0.0.1:0", &[], env)
    }

    /// `fathom serve --index INDEX`, returned once it listens (the index
    /// may still be opening).
    pub fn start_listening(index: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--workers", "2"])
            .arg("--index")
            .arg(index);
        Self::spawn(cmd, env, "fathom listening on ")
    }

    pub fn serve_on(index: &Path, listen: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
        cmd.args(["serve", "--listen", listen, "--metrics-listen", "127.0.0.1:0", "--workers", "2"])
            .arg("--index")
            .arg(index)
            .args(args);
        Self::spawn(cmd, env, "fathom serving on ")
    }

    /// `fathom serve --index INDEX` with at most `fds` open descriptors
    /// (the shell's `ulimit -n`).
    pub fn serve_with_fd_limit(index: &Path, fds: u32) -> Server {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "ulimit -n {fds} && exec \"$0\" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --workers 2 --index \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_fathom"))
            .arg(index);
        Self::spawn(cmd, &[], "fathom serving on ")
    }

    /// `fathom serve --index-root ROOT` on loopback ports.
    pub fn serve_root(root: &Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--workers", "2"])
            .arg("--index-root")
            .arg(root);
        Self::spawn(cmd, &[], "fathom serving on ")
    }

    /// `fathom route --shards SPEC ARGS...` on loopback ports.
    pub fn route(shards: &str, args: &[&str]) -> Server {
        Self::route_env(shards, args, &[])
    }

    /// `fathom route` with extra environment variables.
    pub fn route_env(shards: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
        cmd.args(["route", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--shards", shards]);
        if !args.contains(&"--health-interval-ms") {
            cmd.args(["--health-interval-ms", "100"]);
        }
        cmd.args(args);
        Self::spawn(cmd, env, "fathom routing on ")
    }

    /// A prepared command, returned once it prints `ready_line`.
    pub fn spawn_cmd(cmd: Command, ready_line: &str) -> Server {
        Self::spawn(cmd, &[], ready_line)
    }

    fn spawn(mut cmd: Command, env: &[(&str, &str)], ready_line: &str) -> Server {
        cmd.stderr(Stdio::piped()).stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let line = loop {
            let l = lines.next().expect("process exited before listening").unwrap();
            if l.starts_with(ready_line) {
                break l;
            }
        };
        // Keep draining stderr so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        // "fathom serving on 127.0.0.1:P (metrics 127.0.0.1:Q)" (or listening)
        let grpc = line.split_whitespace().nth(3).unwrap().to_string();
        let metrics = line.rsplit("(metrics ").next().unwrap().trim_end_matches(')').to_string();
        Server { child, grpc: format!("http://{grpc}"), metrics }
    }

    /// `127.0.0.1:P` of the gRPC port.
    pub fn addr(&self) -> &str {
        self.grpc.trim_start_matches("http://")
    }

    pub fn http_get(&self, path: &str) -> String {
        self.http("GET", path)
    }

    /// One request on its own connection to the metrics port; the answer
    /// as text (status line, headers, body).
    pub fn http(&self, method: &str, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(&self.metrics).unwrap();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// SIGTERM, then wait for the exit (at most 10 s).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // The shell's builtin kill: no procps needed on a minimal machine.
        Command::new("sh").args(["-c", &format!("kill -TERM {}", self.child.id())]).status().unwrap();
        for _ in 0..200 {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("process did not exit within 10 s of SIGTERM");
    }

    /// SIGKILL: a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
