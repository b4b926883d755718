//! `report`: the one table (sections of rows, one column per server, the ratio columns),
//! printed on stdout and written to a text file, and the whole state with the table as
//! JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::json;

use super::rows::{sections, Better, Ratio, Row};
use super::state::State;
use super::Run;
use crate::Res;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Where the JSON goes (the state, with the table added).
    #[arg(long)]
    json: PathBuf,
    /// Where the text goes (header lines and the table).
    #[arg(long)]
    text: PathBuf,
    /// Show the blob-delivery section.
    #[arg(long)]
    delivery: bool,
}

fn best_peer(s: &State, r: &Row) -> Option<f64> {
    let peers = s
        .servers
        .iter()
        .filter(|x| !x.starts_with("cargohold"))
        .filter_map(|p| s.get(p, r.key));
    match r.better {
        Better::Higher => peers.reduce(f64::max),
        Better::Lower => peers.reduce(f64::min),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => Option::None,
    }
}

const NOLOG: &str = "cargohold-nolog";

/// The table as text, and as JSON rows.
fn render(s: &State, delivery: bool) -> (String, Vec<serde_json::Value>) {
    let mut cols = s.servers.clone();
    if !cols.iter().any(|c| c == "cargohold") && s.figures.contains_key("cargohold") {
        cols.insert(0, "cargohold".into());
    }
    let has_nolog = cols.iter().any(|c| c == NOLOG);
    let (mut text, mut json_rows) = (String::new(), Vec::new());
    let _ = write!(text, "{:<58}", "figure");
    for c in &cols {
        let _ = write!(text, " {c:>15}");
    }
    let _ = writeln!(
        text,
        "  better  ratio{}",
        if has_nolog { "   cargohold/nolog" } else { "" }
    );
    for sec in sections(s, delivery) {
        let _ = writeln!(text, "-- {}", sec.title);
        for r in &sec.rows {
            let _ = write!(text, "{:<58}", r.label);
            let mut values = serde_json::Map::new();
            for c in &cols {
                let v = s.get(c, r.key);
                let shown = match v {
                    _ if sec.cargohold_only && c != "cargohold" => String::new(),
                    Some(v) => format!("{v:.*}", r.decimals),
                    Option::None => "n/a".into(),
                };
                let _ = write!(text, " {shown:>15}");
                if !shown.is_empty() {
                    values.insert(c.clone(), v.map_or(serde_json::Value::Null, |v| json!(v)));
                }
            }
            let ch = s.get("cargohold", r.key);
            let (q, of) = match r.ratio {
                Ratio::BestPeer => (ratio(ch, best_peer(s, r)), "best peer".to_owned()),
                Ratio::Of(key) => (ratio(ch, s.get("cargohold", key)), key.to_owned()),
                Ratio::None => (Option::None, String::new()),
            };
            let nolog = if sec.cargohold_only {
                Option::None
            } else {
                ratio(ch, s.get(NOLOG, r.key))
            };
            let better = if r.better == Better::Higher {
                "higher"
            } else {
                "lower"
            };
            let fmt = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.2}x"));
            let _ = write!(text, "  {better:<6}  {:<5}", fmt(q));
            if has_nolog {
                let _ = write!(
                    text,
                    "   {}",
                    if sec.cargohold_only {
                        String::new()
                    } else {
                        fmt(nolog)
                    }
                );
            }
            let _ = writeln!(text);
            json_rows.push(json!({
                "section": sec.title, "key": r.key, "label": r.label, "better": better, "values": values,
                "ratio": q, "ratio_of": of, "cargohold_over_nolog": nolog,
            }));
        }
    }
    (text, json_rows)
}

fn footer(s: &State) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "\nratio: cargohold's figure / the best peer's (distribution, ferro) for the first section,");
    let _ = writeln!(t, "/ the row named for the others. 'better' says which way is good: for 'higher' rows a ratio > 1");
    let _ = writeln!(
        t,
        "means cargohold wins, for 'lower' rows (latency, memory, CPU) a ratio < 1 does."
    );
    if s.servers.iter().any(|c| c == NOLOG) {
        let _ = writeln!(
            t,
            "cargohold/nolog: cargohold as shipped (access lines on) / cargohold --access-log off."
        );
    }
    let _ = writeln!(
        t,
        "MB/s = 10^6 bytes/s, GB/s = 10^9 bytes/s (of blob bytes); latencies in milliseconds."
    );
    let _ = writeln!(
        t,
        "load average (1/5/15 min): {} at the start, {} at the end.",
        s.load_average_start, s.load_average_end
    );
    for c in s.servers.iter().filter(|c| !s.status.contains_key(*c)) {
        let _ = writeln!(t, "note: {c}: not run");
    }
    for (c, st) in s.status.iter().filter(|(_, st)| *st != "ok") {
        let _ = writeln!(t, "note: {c}: {st}");
    }
    for n in &s.notes {
        let _ = writeln!(t, "note: {n}");
    }
    if !s.warnings.is_empty() {
        let _ = writeln!(t, "\nwarnings:");
        for w in &s.warnings {
            let _ = writeln!(t, "  - {w}");
        }
    }
    t
}

pub fn report(run: &mut Run, a: ReportArgs) -> Res<()> {
    run.state.load_average_end = super::procfs::load_average();
    let (table, rows) = render(&run.state, a.delivery);
    run.state.table = rows;
    let out = format!("{table}{}", footer(&run.state));
    print!("{out}");
    let mut head = String::from("# cargohold bench\n");
    for (k, v) in &run.state.info {
        let _ = writeln!(head, "# {k}: {v}");
    }
    let _ = writeln!(head, "# servers: {}", run.state.servers.join(" "));
    let _ = writeln!(
        head,
        "# knobs: {}",
        serde_json::to_string(&run.state.knobs).unwrap_or_default()
    );
    let _ = writeln!(
        head,
        "# every step's output, every round: {}\n",
        a.json.display()
    );
    write_file(&a.text, format!("{head}{out}").as_bytes())?;
    let json = serde_json::to_vec_pretty(&run.state).map_err(|e| format!("state to JSON: {e}"))?;
    write_file(&a.json, &json)?;
    run.save()
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> Res<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct K {
        #[command(flatten)]
        knobs: super::super::Knobs,
    }

    fn state() -> State {
        let servers = ["cargohold", "cargohold-nolog", "distribution", "ferro"]
            .map(String::from)
            .to_vec();
        let mut s = State::new(
            servers,
            K::parse_from(["k"]).knobs,
            "/tmp".into(),
            Default::default(),
        );
        for (col, rps, p99) in [
            ("cargohold", 40.0, 2.0),
            ("cargohold-nolog", 50.0, 1.0),
            ("distribution", 1.0, 9.0),
            ("ferro", 20.0, 4.0),
        ] {
            s.put(col, "man_tag_rps", rps);
            s.put(col, "man_tag_p99", p99);
        }
        s.put("cargohold", "nginx_man_tag_rps", 10.0);
        s.put("cargohold", "nginx_plain_rps", 40.0);
        s
    }

    fn table_row<'a>(rows: &'a [serde_json::Value], key: &str) -> &'a serde_json::Value {
        rows.iter()
            .find(|r| r["key"] == key)
            .expect("row in the table")
    }

    #[test]
    fn ratios_divide_by_the_best_peer_the_logs_off_column_and_the_named_row() {
        let (text, rows) = render(&state(), false);
        let rps = table_row(&rows, "man_tag_rps");
        assert_eq!(
            (rps["ratio"].as_f64(), rps["cargohold_over_nolog"].as_f64()),
            (Some(2.0), Some(0.8))
        );
        // A lower-is-better row is compared with the lowest peer.
        assert_eq!(table_row(&rows, "man_tag_p99")["ratio"].as_f64(), Some(0.5));
        let ngx = table_row(&rows, "nginx_man_tag_rps");
        assert_eq!(
            (ngx["ratio"].as_f64(), ngx["ratio_of"].as_str()),
            (Some(0.25), Some("nginx_plain_rps"))
        );
        // Figures nobody measured are n/a, and nginx rows leave the peers' columns empty.
        assert_eq!(
            table_row(&rows, "push_mono")["values"]["ferro"],
            serde_json::Value::Null
        );
        assert!(ngx["values"].get("ferro").is_none());
        assert!(text
            .lines()
            .any(|l| l.starts_with("manifest GET by tag (req/s)")
                && l.contains("2.00x")
                && l.contains("0.80x")));
    }

    #[test]
    fn the_delivery_section_is_there_only_when_asked_for() {
        let has = |delivery| {
            render(&state(), delivery)
                .1
                .iter()
                .any(|r| r["key"] == "fs_nginx_mbs")
        };
        assert!(!has(false));
        assert!(has(true));
    }
}
