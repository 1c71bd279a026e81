//! Trace sinks: where cycle-stepped models report signal changes and activity spans.
//!
//! A timing model holds a `&mut dyn TraceSink` and checks [`TraceSink::enabled`] before doing any
//! work to describe an event; [`NullSink`] (the default) costs one branch. Sinks:
//!
//! | sink | output | viewer |
//! |---|---|---|
//! | [`NullSink`] | nothing | |
//! | [`VcdSink`] | Value Change Dump (IEEE 1364 §18) of per-cycle signals | GTKWave, Surfer |
//! | [`PerfettoSink`] | Chrome trace-event JSON: spans (`ph: "X"`), signals as counters (`ph: "C"`) | ui.perfetto.dev, chrome://tracing |
//! | [`CsvSink`] | `trace.csv` v1 (docs/style.md §2.5): integers only, sorted by `(cycle, unit)`, for golden diffs | diff |
//! | [`Tee`] | forwards to several sinks | |
//!
//! Traces hold no energy; it is recomputed from counters. Units are dotted paths
//! (`array.pe0`), used as VCD scopes, Perfetto tracks and CSV units. Events may arrive out of
//! cycle order; sinks that need order buffer and sort (stably) at [`TraceSink::finish`].

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::units::Hertz;

/// Handle of a declared signal, valid only for the sink that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignalId(u32);

impl SignalId {
    /// Declaration number (0, 1, 2, … in the order signals were declared on the sink).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Receiver of trace events from a simulation.
pub trait TraceSink {
    /// Whether events are recorded; callers skip building events when `false`.
    fn enabled(&self) -> bool;

    /// Declares signal `name` of `width` bits (1..=64) in unit `scope` (dotted path, may be empty).
    fn declare_signal(&mut self, scope: &str, name: &str, width: u32) -> SignalId;

    /// Signal `id` takes `value` (low `width` bits kept) at `cycle`.
    fn change(&mut self, cycle: u64, id: SignalId, value: u64);

    /// Activity `name` of category `cat` on `track` (a unit path) over `[start_cycle, end_cycle)`.
    fn span(&mut self, name: &str, cat: &str, start_cycle: u64, end_cycle: u64, track: &str);

    /// Writes everything buffered and flushes; later events are ignored.
    ///
    /// # Errors
    ///
    /// The first I/O error met while writing, or `InvalidInput` for a [`SignalId`] this sink
    /// did not issue.
    fn finish(&mut self) -> io::Result<()>;
}

/// A sink that records nothing; `enabled()` is `false`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl TraceSink for NullSink {
    fn enabled(&self) -> bool {
        false
    }
    fn declare_signal(&mut self, _: &str, _: &str, _: u32) -> SignalId {
        SignalId(0)
    }
    fn change(&mut self, _: u64, _: SignalId, _: u64) {}
    fn span(&mut self, _: &str, _: &str, _: u64, _: u64, _: &str) {}
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Signal {
    scope: String,
    name: String,
    width: u32,
}

/// Clamps a width to 1..=64 and returns the value mask for it.
fn mask(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// Replaces characters that would break a VCD identifier or a CSV field.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_whitespace() || c == ',' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn declare(signals: &mut Vec<Signal>, scope: &str, name: &str, width: u32) -> SignalId {
    debug_assert!(
        (1..=64).contains(&width),
        "signal width {width} not in 1..=64"
    );
    let id = SignalId(u32::try_from(signals.len()).unwrap_or(u32::MAX));
    signals.push(Signal {
        scope: clean(scope),
        name: clean(name),
        width: width.clamp(1, 64),
    });
    id
}

fn bad_id(id: SignalId) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("trace: signal id {} was not declared on this sink", id.0),
    )
}

/// Writes signals as a VCD file at [`finish`](TraceSink::finish); spans are ignored.
///
/// Declarations and changes are buffered, so signals may be declared at any time and changes may
/// arrive in any cycle order. At `finish` the header lists every signal (scopes nested by the
/// dotted unit path; an empty scope becomes `top`), then changes are written sorted stably by
/// cycle; of several changes to one signal in one cycle the last wins, and repeats of the current
/// value are dropped. Wrap a file writer in `BufWriter`.
#[derive(Debug)]
pub struct VcdSink<W: Write> {
    out: W,
    clock: Option<Hertz>,
    finished: bool,
    signals: Vec<Signal>,
    changes: Vec<(u64, SignalId, u64)>,
}

impl<W: Write> VcdSink<W> {
    /// One VCD time unit per cycle (declared `$timescale 1 ns`, with a comment saying so).
    pub fn new(out: W) -> Self {
        VcdSink {
            out,
            clock: None,
            finished: false,
            signals: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Real time at `clock`: `$timescale 1 ps`, timestamp `round(cycle · 1e12 / f)`.
    pub fn with_clock(out: W, clock: Hertz) -> Self {
        VcdSink {
            clock: Some(clock),
            ..Self::new(out)
        }
    }

    /// The writer (complete VCD only after [`finish`](TraceSink::finish)).
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn vcd_timestamp(clock: Option<Hertz>, cycle: u64) -> u64 {
    match clock {
        None => cycle,
        Some(f) => {
            let period_ps = 1e12 / f.0;
            if period_ps.fract() == 0.0 && period_ps >= 1.0 {
                cycle.saturating_mul(period_ps as u64)
            } else {
                (cycle as f64 * period_ps).round() as u64
            }
        }
    }
}

fn scope_path(s: &Signal) -> Vec<String> {
    if s.scope.is_empty() {
        vec!["top".to_owned()]
    } else {
        s.scope.split('.').map(str::to_owned).collect()
    }
}

fn write_vcd<W: Write>(
    out: &mut W,
    clock: Option<Hertz>,
    signals: &[Signal],
    mut changes: Vec<(u64, SignalId, u64)>,
) -> io::Result<()> {
    if let Some(&(_, id, _)) = changes.iter().find(|c| c.1.index() >= signals.len()) {
        return Err(bad_id(id));
    }
    let mut w = vcd::Writer::new(out);
    w.version(concat!("nacsim-core ", env!("CARGO_PKG_VERSION")))?;
    match clock {
        None => {
            w.comment("1 time unit = 1 clock cycle")?;
            w.timescale(1, vcd::TimescaleUnit::NS)?;
        }
        Some(f) => {
            w.comment(&format!("clock {f}; 1 time unit = 1 ps"))?;
            w.timescale(1, vcd::TimescaleUnit::PS)?;
        }
    }
    // Sorting by scope path keeps each scope subtree contiguous.
    let mut order: Vec<usize> = (0..signals.len()).collect();
    order.sort_by_cached_key(|&i| scope_path(&signals[i]));
    let mut codes = vec![vcd::IdCode::FIRST; signals.len()];
    let mut open: Vec<String> = Vec::new();
    for i in order {
        let p = scope_path(&signals[i]);
        let common = open.iter().zip(&p).take_while(|(a, b)| a == b).count();
        while open.len() > common {
            w.upscope()?;
            open.pop();
        }
        for seg in &p[common..] {
            w.add_module(seg)?;
            open.push(seg.clone());
        }
        codes[i] = w.add_wire(signals[i].width, &signals[i].name)?;
    }
    for _ in open {
        w.upscope()?;
    }
    w.enddefinitions()?;

    changes.sort_by_key(|&(cycle, id, _)| (cycle, id)); // stable: arrival order kept
    let mut last: Vec<Option<u64>> = vec![None; signals.len()];
    let mut current_ts = None;
    for (k, &(cycle, id, value)) in changes.iter().enumerate() {
        if changes
            .get(k + 1)
            .is_some_and(|&(c, i, _)| c == cycle && i == id)
        {
            continue; // a later change in the same cycle wins
        }
        let (sig, code) = (&signals[id.index()], codes[id.index()]);
        let value = value & mask(sig.width);
        if last[id.index()] == Some(value) {
            continue;
        }
        last[id.index()] = Some(value);
        let ts = vcd_timestamp(clock, cycle);
        if current_ts != Some(ts) {
            w.timestamp(ts)?;
            current_ts = Some(ts);
        }
        if sig.width == 1 {
            w.change_scalar(code, value == 1)?;
        } else {
            let bits = (0..sig.width).rev().map(|b| (value >> b & 1 == 1).into());
            w.change_vector(code, bits)?;
        }
    }
    w.flush()
}

impl<W: Write> TraceSink for VcdSink<W> {
    fn enabled(&self) -> bool {
        !self.finished
    }
    fn declare_signal(&mut self, scope: &str, name: &str, width: u32) -> SignalId {
        declare(&mut self.signals, scope, name, width)
    }
    fn change(&mut self, cycle: u64, id: SignalId, value: u64) {
        if !self.finished {
            self.changes.push((cycle, id, value));
        }
    }
    fn span(&mut self, _: &str, _: &str, _: u64, _: u64, _: &str) {}
    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let changes = std::mem::take(&mut self.changes);
        write_vcd(&mut self.out, self.clock, &self.signals, changes)
    }
}

/// One Chrome trace event.
#[derive(Serialize)]
struct Event<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    cat: &'a str,
    ph: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<serde_json::Value>,
}

/// Writes Chrome/Perfetto trace-event JSON, streaming events as they arrive.
///
/// Times are microseconds: `ts = cycle / f · 1e6`. Each track (unit path) is a thread (`tid`,
/// numbered in first-use order from 1, named by a `thread_name` metadata event); spans are
/// complete events (`ph: "X"`, `dur = (end − start) / f · 1e6`, 0 if `end < start`); signal
/// changes are counter events (`ph: "C"`) named `scope.name`. The file is only valid JSON after
/// [`finish`](TraceSink::finish). Wrap a file writer in `BufWriter`.
#[derive(Debug)]
pub struct PerfettoSink<W: Write> {
    out: W,
    clock: Hertz,
    started: bool,
    finished: bool,
    error: Option<io::Error>,
    tracks: HashMap<String, u32>,
    signals: Vec<Signal>,
}

const PID: u32 = 1;

impl<W: Write> PerfettoSink<W> {
    /// A sink converting cycles to time at `clock`.
    pub fn new(out: W, clock: Hertz) -> Self {
        PerfettoSink {
            out,
            clock,
            started: false,
            finished: false,
            error: None,
            tracks: HashMap::new(),
            signals: Vec::new(),
        }
    }

    /// The writer (complete JSON only after `finish`).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn us(&self, cycles: u64) -> f64 {
        cycles as f64 / self.clock.0 * 1e6
    }

    fn emit(&mut self, e: &Event<'_>) {
        if self.error.is_some() || self.finished {
            return;
        }
        let sep: &[u8] = if self.started {
            b",\n"
        } else {
            b"{\"traceEvents\":[\n"
        };
        self.started = true;
        let r = self
            .out
            .write_all(sep)
            .and_then(|()| serde_json::to_writer(&mut self.out, e).map_err(io::Error::from));
        if let Err(err) = r {
            self.error = Some(err);
        }
    }

    fn tid(&mut self, track: &str) -> u32 {
        if let Some(&t) = self.tracks.get(track) {
            return t;
        }
        let t = u32::try_from(self.tracks.len() + 1).unwrap_or(u32::MAX);
        self.tracks.insert(track.to_owned(), t);
        if t == 1 {
            self.emit(&Event {
                name: "process_name",
                cat: "",
                ph: "M",
                ts: None,
                dur: None,
                pid: PID,
                tid: None,
                args: Some(serde_json::json!({ "name": "nacsim" })),
            });
        }
        self.emit(&Event {
            name: "thread_name",
            cat: "",
            ph: "M",
            ts: None,
            dur: None,
            pid: PID,
            tid: Some(t),
            args: Some(serde_json::json!({ "name": track })),
        });
        t
    }
}

impl<W: Write> TraceSink for PerfettoSink<W> {
    fn enabled(&self) -> bool {
        !self.finished
    }
    fn declare_signal(&mut self, scope: &str, name: &str, width: u32) -> SignalId {
        declare(&mut self.signals, scope, name, width)
    }
    fn change(&mut self, cycle: u64, id: SignalId, value: u64) {
        let Some(sig) = self.signals.get(id.index()) else {
            self.error.get_or_insert(bad_id(id));
            return;
        };
        let name = if sig.scope.is_empty() {
            sig.name.clone()
        } else {
            format!("{}.{}", sig.scope, sig.name)
        };
        let value = value & mask(sig.width);
        let ts = self.us(cycle);
        self.emit(&Event {
            name: &name,
            cat: "",
            ph: "C",
            ts: Some(ts),
            dur: None,
            pid: PID,
            tid: None,
            args: Some(serde_json::json!({ "value": value })),
        });
    }
    fn span(&mut self, name: &str, cat: &str, start_cycle: u64, end_cycle: u64, track: &str) {
        let tid = self.tid(track);
        let (ts, dur) = (
            self.us(start_cycle),
            self.us(end_cycle.saturating_sub(start_cycle)),
        );
        self.emit(&Event {
            name,
            cat,
            ph: "X",
            ts: Some(ts),
            dur: Some(dur),
            pid: PID,
            tid: Some(tid),
            args: None,
        });
    }
    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        if let Some(e) = self.error.take() {
            self.finished = true;
            return Err(e);
        }
        let head = if self.started {
            "\n"
        } else {
            "{\"traceEvents\":["
        };
        let tail = format!(
            "{head}],\"displayTimeUnit\":\"ns\",\"otherData\":{{\"clock_mhz\":{}}}}}\n",
            self.clock.mhz()
        );
        self.finished = true;
        self.out.write_all(tail.as_bytes())?;
        self.out.flush()
    }
}

/// Writes the golden-trace CSV format v1 (docs/style.md §2.5) at [`finish`](TraceSink::finish).
///
/// ```text
/// # nacsim-trace v1 clock_mhz=500 config=models/designs/x.ron
/// cycle,unit,event,a0,a1,a2
/// 12,array.pe0,acc,0x3f,,
/// 12,array.pe0,mvm,4,,
/// ```
///
/// A signal change is `cycle,<scope>,<signal>,0x<value hex>,,`; a span is
/// `start_cycle,<track>,<name>,<duration in cycles>,,` (its category is not written). Rows are
/// sorted stably by `(cycle, unit)`; ASCII with LF line ends. Commas and whitespace in names
/// become `_`.
#[derive(Debug)]
pub struct CsvSink<W: Write> {
    out: W,
    header: String,
    finished: bool,
    bad_id: Option<SignalId>,
    signals: Vec<Signal>,
    rows: Vec<(u64, String, String, String)>,
}

impl<W: Write> CsvSink<W> {
    /// A sink whose header records `clock` and the `config` path the trace came from.
    pub fn new(out: W, clock: Hertz, config: &str) -> Self {
        CsvSink {
            out,
            header: format!(
                "# nacsim-trace v1 clock_mhz={} config={}\ncycle,unit,event,a0,a1,a2\n",
                clock.mhz(),
                clean(config)
            ),
            finished: false,
            bad_id: None,
            signals: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The writer (complete CSV only after [`finish`](TraceSink::finish)).
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> TraceSink for CsvSink<W> {
    fn enabled(&self) -> bool {
        !self.finished
    }
    fn declare_signal(&mut self, scope: &str, name: &str, width: u32) -> SignalId {
        declare(&mut self.signals, scope, name, width)
    }
    fn change(&mut self, cycle: u64, id: SignalId, value: u64) {
        if self.finished {
            return;
        }
        match self.signals.get(id.index()) {
            Some(s) => self.rows.push((
                cycle,
                s.scope.clone(),
                s.name.clone(),
                format!("0x{:x}", value & mask(s.width)),
            )),
            None => {
                self.bad_id.get_or_insert(id);
            }
        }
    }
    fn span(&mut self, name: &str, _cat: &str, start_cycle: u64, end_cycle: u64, track: &str) {
        if !self.finished {
            let dur = end_cycle.saturating_sub(start_cycle);
            self.rows
                .push((start_cycle, clean(track), clean(name), dur.to_string()));
        }
    }
    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if let Some(id) = self.bad_id {
            return Err(bad_id(id));
        }
        let mut rows = std::mem::take(&mut self.rows);
        rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        self.out.write_all(self.header.as_bytes())?;
        for (cycle, unit, event, a0) in &rows {
            writeln!(self.out, "{cycle},{unit},{event},{a0},,")?;
        }
        self.out.flush()
    }
}

/// Forwards every event to several sinks (e.g. VCD and Perfetto from one run).
///
/// Its [`SignalId`]s are its own; it maps them to each inner sink's ids.
pub struct Tee<'a> {
    sinks: Vec<&'a mut dyn TraceSink>,
    ids: Vec<Vec<SignalId>>,
}

impl<'a> Tee<'a> {
    /// A sink forwarding to `sinks`.
    pub fn new(sinks: Vec<&'a mut dyn TraceSink>) -> Self {
        Tee {
            sinks,
            ids: Vec::new(),
        }
    }
}

impl TraceSink for Tee<'_> {
    fn enabled(&self) -> bool {
        self.sinks.iter().any(|s| s.enabled())
    }
    fn declare_signal(&mut self, scope: &str, name: &str, width: u32) -> SignalId {
        let id = SignalId(u32::try_from(self.ids.len()).unwrap_or(u32::MAX));
        let inner = self
            .sinks
            .iter_mut()
            .map(|s| s.declare_signal(scope, name, width))
            .collect();
        self.ids.push(inner);
        id
    }
    fn change(&mut self, cycle: u64, id: SignalId, value: u64) {
        match self.ids.get(id.index()) {
            Some(inner) => {
                for (s, &i) in self.sinks.iter_mut().zip(inner) {
                    s.change(cycle, i, value);
                }
            }
            // Pass an id no inner sink issued, so each reports it at finish.
            None => {
                for s in &mut self.sinks {
                    s.change(cycle, SignalId(u32::MAX), value);
                }
            }
        }
    }
    fn span(&mut self, name: &str, cat: &str, start_cycle: u64, end_cycle: u64, track: &str) {
        for s in &mut self.sinks {
            s.span(name, cat, start_cycle, end_cycle, track);
        }
    }
    fn finish(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for s in &mut self.sinks {
            let r = s.finish();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a VCD back: (scope path + name → code) and per code the (timestamp, value) list.
    fn read_vcd(bytes: &[u8]) -> (vcd::Header, Vec<(u64, vcd::IdCode, u64)>) {
        let mut p = vcd::Parser::new(bytes);
        let header = p.parse_header().unwrap();
        let mut t = 0;
        let mut out = Vec::new();
        for cmd in p {
            match cmd.unwrap() {
                vcd::Command::Timestamp(ts) => t = ts,
                vcd::Command::ChangeScalar(id, v) => {
                    out.push((t, id, u64::from(v == vcd::Value::V1)))
                }
                vcd::Command::ChangeVector(id, v) => {
                    let n = v
                        .iter()
                        .fold(0u64, |acc, b| acc << 1 | u64::from(b == vcd::Value::V1));
                    out.push((t, id, n));
                }
                _ => {}
            }
        }
        (header, out)
    }

    #[test]
    fn vcd_round_trips_through_parser_sorted_by_cycle() {
        let mut sink = VcdSink::new(Vec::new());
        let acc = sink.declare_signal("array.pe0", "acc", 8);
        let valid = sink.declare_signal("array.pe0", "valid", 1);
        // Changes out of cycle order, a same-cycle overwrite, a repeat and a late declaration.
        sink.change(5, acc, 0x3f);
        sink.change(2, acc, 0x11);
        sink.change(2, valid, 1);
        sink.change(5, acc, 0x140); // masked to 8 bits: 0x40, and wins over 0x3f
        sink.change(7, valid, 1); // repeat, dropped
        let busy = sink.declare_signal("array", "busy", 1);
        sink.change(3, busy, 1);
        sink.span("mvm", "compute", 0, 4, "array"); // ignored by VCD
        assert!(sink.enabled());
        sink.finish().unwrap();
        assert!(!sink.enabled());
        let bytes = sink.into_inner();
        let (header, changes) = read_vcd(&bytes);
        assert_eq!(header.timescale, Some((1, vcd::TimescaleUnit::NS)));
        let code = |path: &[&str]| header.find_var(path).unwrap().code;
        let (acc, valid, busy) = (
            code(&["array", "pe0", "acc"]),
            code(&["array", "pe0", "valid"]),
            code(&["array", "busy"]),
        );
        assert_eq!(header.find_var(&["array", "pe0", "acc"]).unwrap().size, 8);
        assert_eq!(
            changes,
            [(2, acc, 0x11), (2, valid, 1), (3, busy, 1), (5, acc, 0x40)]
        );
    }

    #[test]
    fn vcd_with_clock_uses_picoseconds_and_rejects_foreign_ids() {
        let mut sink = VcdSink::with_clock(Vec::new(), Hertz::from_mhz(500.0));
        let s = sink.declare_signal("", "x", 4);
        sink.change(3, s, 9);
        sink.finish().unwrap();
        let (header, changes) = read_vcd(&sink.into_inner());
        assert_eq!(header.timescale, Some((1, vcd::TimescaleUnit::PS)));
        assert_eq!(changes[0].0, 6000);
        assert!(header.find_var(&["top", "x"]).is_some());

        let mut sink = VcdSink::new(Vec::new());
        sink.change(0, SignalId(3), 1);
        let err = sink.finish().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn perfetto_json_parses_with_spans_tracks_and_counters() {
        let mut sink = PerfettoSink::new(Vec::new(), Hertz::from_mhz(500.0));
        let acc = sink.declare_signal("array.pe0", "acc", 8);
        sink.span("mvm", "compute", 10, 14, "array.pe0");
        sink.span("load", "memory", 0, 10, "sram");
        sink.change(12, acc, 0x1ff);
        sink.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&sink.into_inner()).unwrap();
        assert_eq!(v["displayTimeUnit"], "ns");
        let events = v["traceEvents"].as_array().unwrap();
        let find = |ph: &str, name: &str| {
            events
                .iter()
                .find(|e| e["ph"] == ph && e["name"] == name)
                .unwrap_or_else(|| panic!("no {ph} {name} in {events:?}"))
        };
        let mvm = find("X", "mvm");
        assert_eq!(mvm["cat"], "compute");
        // 10 cycles at 500 MHz = 20 ns = 0.02 us; 4 cycles = 0.008 us.
        assert!((mvm["ts"].as_f64().unwrap() - 0.02).abs() < 1e-12);
        assert!((mvm["dur"].as_f64().unwrap() - 0.008).abs() < 1e-12);
        let load = find("X", "load");
        assert_ne!(mvm["tid"], load["tid"]);
        let names: Vec<_> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| (e["tid"].clone(), e["args"]["name"].clone()))
            .collect();
        assert!(names.contains(&(mvm["tid"].clone(), "array.pe0".into())));
        assert!(names.contains(&(load["tid"].clone(), "sram".into())));
        assert_eq!(find("C", "array.pe0.acc")["args"]["value"], 0xff);
    }

    #[test]
    fn empty_perfetto_trace_is_valid_json() {
        let mut sink = PerfettoSink::new(Vec::new(), Hertz::from_mhz(1000.0));
        sink.finish().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&sink.into_inner()).unwrap();
        assert_eq!(v["traceEvents"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn csv_rows_sorted_by_cycle_then_unit() {
        let mut sink = CsvSink::new(Vec::new(), Hertz::from_mhz(500.0), "models/designs/x.ron");
        let acc = sink.declare_signal("array.pe1", "acc", 8);
        let acc0 = sink.declare_signal("array.pe0", "acc", 8);
        sink.change(12, acc, 0x3f);
        sink.change(12, acc0, 0x1);
        sink.span("mvm", "compute", 3, 7, "array");
        sink.finish().unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(
            text,
            "# nacsim-trace v1 clock_mhz=500 config=models/designs/x.ron\n\
             cycle,unit,event,a0,a1,a2\n\
             3,array,mvm,4,,\n\
             12,array.pe0,acc,0x1,,\n\
             12,array.pe1,acc,0x3f,,\n"
        );
    }

    #[test]
    fn tee_maps_ids_to_each_sink_and_null_is_disabled() {
        let mut null = NullSink;
        assert!(!null.enabled());
        let mut vcd = VcdSink::new(Vec::new());
        let mut csv = CsvSink::new(Vec::new(), Hertz::from_mhz(100.0), "c.ron");
        let pre = csv.declare_signal("other", "y", 1); // shifts csv's ids
        csv.change(0, pre, 1);
        {
            let mut tee = Tee::new(vec![&mut null, &mut vcd, &mut csv]);
            assert!(tee.enabled());
            let x = tee.declare_signal("u", "x", 4);
            tee.change(1, x, 5);
            tee.finish().unwrap();
        }
        let (_, changes) = read_vcd(&vcd.into_inner());
        assert_eq!(changes.len(), 1);
        let text = String::from_utf8(csv.into_inner()).unwrap();
        assert!(text.ends_with("0,other,y,0x1,,\n1,u,x,0x5,,\n"), "{text}");
    }
}
