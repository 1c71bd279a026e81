use super::*;

#[test]
fn csv_quotes_only_fields_with_commas_quotes_or_line_breaks() {
    let row = |value: SweepValue| MergedRow {
        values: vec![value.clone()],
        value,
        trials: 2,
        trials_expected: 3,
        accuracy_mean: 0.5,
        accuracy_std: 0.25,
        accuracy_min: 0.125,
        accuracy_max: 1.0,
        energy_pj_mean: 1234.5,
        cycles_mean: 10.0,
        tops_per_watt_mean: 0.0,
        metrics: Default::default(),
    };
    let csv = to_csv(&[
        row(SweepValue::Number(0.05)),
        row(SweepValue::Text("TaOxHfOx".into())),
        row(SweepValue::Text("a,b".into())),
        row(SweepValue::Text("say \"hi\"".into())),
        row(SweepValue::Text("two\nlines".into())),
        row(SweepValue::Text(String::new())),
    ]);
    let tail = ",2,0.500000,0.250000,0.125000,1.000000,1.234500e3,10.0,0.000000,3,false\n";
    let expected = [
        "value,trials,accuracy_mean,accuracy_std,accuracy_min,accuracy_max,energy_pj_mean,cycles_mean,tops_per_watt_mean,trials_expected,complete\n".to_string(),
        format!("0.05{tail}"),
        format!("TaOxHfOx{tail}"),
        format!("\"a,b\"{tail}"),
        format!("\"say \"\"hi\"\"\"{tail}"),
        format!("\"two\nlines\"{tail}"),
        tail.to_string(),
    ]
    .concat();
    assert_eq!(csv, expected);
}

#[test]
fn shards_partition_the_grid() {
    let all = shard_points(7, 3, 0, 1);
    assert_eq!(all.len(), 21);
    let mut joined: Vec<_> = (0..4).flat_map(|s| shard_points(7, 3, s, 4)).collect();
    joined.sort();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(joined, sorted);
}

#[test]
fn a_claim_is_exclusive_and_dies_with_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("points")).unwrap();
    let Claim::Mine(first) = claim(dir.path(), 1, 2, false).unwrap() else {
        panic!("a free point is claimed")
    };
    assert!(first.is_locked(), "this file system locks");
    assert!(matches!(
        claim(dir.path(), 1, 2, false).unwrap(),
        Claim::Busy
    ));
    // Its holder ended without writing the point (a killed process): the next takes over.
    drop(first);
    assert!(claim_path(dir.path(), 1, 2).exists());
    let Claim::Mine(second) = claim(dir.path(), 1, 2, false).unwrap() else {
        panic!("an abandoned claim is taken over")
    };
    std::fs::write(point_path(dir.path(), 1, 2), b"{}").unwrap();
    second.release();
    assert!(!claim_path(dir.path(), 1, 2).exists());
    assert!(matches!(
        claim(dir.path(), 1, 2, true).unwrap(),
        Claim::Done
    ));
}

#[test]
fn missing_points_are_listed_up_to_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SweepConfig {
        schema_version: 1,
        name: "t".into(),
        design: "d.ron".into(),
        network: "n.ron".into(),
        train: String::new(),
        data: String::new(),
        limit: 0,
        train_limit: 0,
        topology: String::new(),
        parameter: Some(SweepParameter {
            path: "x".into(),
            values: vec![SweepValue::Number(0.5), SweepValue::Text("AgASi".into())],
        }),
        axes: Vec::new(),
        trials: 7,
        seed: 1,
    };
    let m = Merged {
        record: record::SweepRecord::new(&cfg, dir.path(), "0", Vec::new()),
        grid: cfg.grid(),
        training: false,
        rows: Vec::new(),
        missing: shard_points(2, 7, 0, 1),
    };
    let s = m.describe_missing(10);
    assert!(
        s.starts_with("value 0.5 trial 0, value 0.5 trial 1,")
            && s.contains("value AgASi trial 2, and 4 more"),
        "{s}"
    );
    assert_eq!(s.matches("trial").count(), 10, "{s}");
}

#[test]
fn paths_split_into_keys_and_indices() {
    let p = split_path("engines[0].engine.Systolic.rows");
    assert_eq!(p.len(), 5);
    assert!(matches!(p[1], Part::Index(0)));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Every point of any grid is in exactly one shard, for any shard count.
    #[test]
    fn shards_partition_any_grid(designs in 1usize..40, trials in 1u32..5, n in 1usize..9) {
        let mut seen = vec![0u8; designs * trials as usize];
        for s in 0..n {
            for (d, t) in shard_points(designs, trials, s, n) {
                seen[d * trials as usize + t as usize] += 1;
            }
        }
        proptest::prop_assert!(seen.iter().all(|&c| c == 1));
    }
}

fn stats(mean: f64) -> MetricStats {
    MetricStats {
        mean,
        std: 0.0,
        min: mean,
        max: mean,
    }
}

#[test]
fn a_training_table_has_the_write_totals_and_no_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SweepConfig {
        schema_version: 1,
        name: "t".into(),
        design: String::new(),
        network: String::new(),
        train: "t.ron".into(),
        data: String::new(),
        limit: 0,
        train_limit: 0,
        topology: String::new(),
        parameter: Some(SweepParameter {
            path: "insitu.x".into(),
            values: vec![SweepValue::Number(0.5)],
        }),
        axes: Vec::new(),
        trials: 1,
        seed: 1,
    };
    let metrics = [
        ("accuracy", 0.75),
        ("float_accuracy", 0.8),
        ("energy_pj", 3.0e9),
        ("write_pulses", 1234.0),
        ("write_energy_pj", 2.5e9),
        ("write_latency_s", 0.125),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), stats(v)))
    .collect();
    let m = Merged {
        record: record::SweepRecord::new(&cfg, dir.path(), "0", Vec::new()),
        grid: cfg.grid(),
        training: true,
        rows: vec![MergedRow {
            value: SweepValue::Number(0.5),
            values: vec![SweepValue::Number(0.5)],
            trials: 1,
            trials_expected: 1,
            accuracy_mean: 0.75,
            accuracy_std: 0.0,
            accuracy_min: 0.75,
            accuracy_max: 0.75,
            energy_pj_mean: 3.0e9,
            cycles_mean: 0.0,
            tops_per_watt_mean: 0.0,
            metrics,
        }],
        missing: Vec::new(),
    };
    assert_eq!(
        m.table().to_csv(),
        "value,trials,accuracy_mean,accuracy_std,accuracy_min,accuracy_max,energy_pj_mean,\
         float_accuracy_mean,write_pulses_mean,write_energy_pj_mean,write_latency_s_mean,trials_expected,complete\n\
         0.5,1,0.750000,0.000000,0.750000,0.750000,3.000000e9,0.8,1234,2.5e9,0.125,1,true\n"
    );
}

#[test]
fn numbers_keep_seven_significant_digits() {
    assert_eq!(sig7(0.0), "0");
    assert_eq!(sig7(0.265), "0.265");
    assert_eq!(sig7(1234.5678), "1234.568");
    assert_eq!(sig7(2.5e9), "2.5e9");
    assert_eq!(sig7(3.643026e-11), "3.643026e-11");
    assert_eq!(sig7(-0.001), "-0.001");
}
