//! Process figures from /proc (Linux): memory, CPU time, start time,
//! descriptors.

fn status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Current resident set size in bytes.
pub fn rss_bytes() -> u64 {
    status_kib("VmRSS:").unwrap_or(0) * 1024
}

/// Peak resident set size in bytes.
pub fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM:").unwrap_or(0) * 1024
}

/// What `process_*` metrics report; zeros where /proc cannot be read.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessFigures {
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
    pub open_fds: u64,
    pub max_fds: u64,
}

/// Clock ticks per second of /proc/*/stat times: USER_HZ, fixed at 100 in
/// Linux's user ABI.
const TICKS_PER_SECOND: f64 = 100.0;

pub fn process_figures() -> ProcessFigures {
    let mut p = ProcessFigures {
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
        max_fds: open_files_limit().unwrap_or(0) as u64,
        ..ProcessFigures::default()
    };
    // Fields after the command name, which may hold spaces: state is field 3,
    // utime 14, stime 15, starttime 22 (1-based, see proc(5)).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    if let (Some(user), Some(system)) = (field(14), field(15)) {
        p.cpu_seconds = (user + system) / TICKS_PER_SECOND;
    }
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok())));
    if let (Some(boot), Some(start)) = (boot, field(22)) {
        p.start_time_seconds = boot + start / TICKS_PER_SECOND;
    }
    p
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Parses sizes like `2GiB`, `512M`, `1024`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("cannot parse size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => return Err(format!("unknown size unit {u:?} (use K, M, G, T)")),
    };
    Ok((v * mult as f64) as u64)
}

/// Parses a memory budget: `auto` or a size (`0` = none).
pub fn parse_memory_budget(s: &str) -> Result<fathom_index::MemoryBudget, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(fathom_index::MemoryBudget::Auto);
    }
    parse_size(s).map(fathom_index::MemoryBudget::Bytes).map_err(|e| format!("{e}; or auto"))
}

/// Open-file limit of this process (soft), from /proc.
pub fn open_files_limit() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_budgets_parse() {
        use fathom_index::MemoryBudget;
        assert_eq!(super::parse_memory_budget("auto").unwrap(), MemoryBudget::Auto);
        assert_eq!(super::parse_memory_budget("16MiB").unwrap(), MemoryBudget::Bytes(16 << 20));
        assert_eq!(super::parse_memory_budget("0").unwrap(), MemoryBudget::Bytes(0));
        assert!(super::parse_memory_budget("lots").is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(super::parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(super::parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(super::parse_size("100").unwrap(), 100);
        assert!(super::parse_size("3 parsecs").is_err());
    }

    #[test]
    fn process_figures_are_plausible() {
        let p = super::process_figures();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(p.start_time_seconds > now - 3_600.0 && p.start_time_seconds <= now + 1.0, "{p:?}");
        assert!(p.open_fds >= 3 && p.max_fds >= p.open_fds, "{p:?}");
        assert!(p.cpu_seconds >= 0.0, "{p:?}");
    }
}
