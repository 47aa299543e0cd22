use super::*;

fn heap(units_per_chunk: usize, max_units: usize, opts: &str) -> Arc<Heap<u32>> {
    Heap::new(HeapSpec {
        label: "test".into(),
        units_per_chunk,
        max_units,
        options: HeapOptions {
            grow_exponentially: opts.contains('E'),
            shrink: opts.contains('S'),
            unlimited: opts.contains('U'),
        },
    })
}

fn figures(h: &Heap<u32>) -> (usize, usize, usize, usize) {
    let s = h.stats();
    (s.chunk_size, s.units, s.chunks, s.allocated)
}

#[test]
fn a_new_heap_has_no_chunk_and_reports_its_first_chunk_size() {
    let h = heap(10, 1000, "ES");
    assert_eq!(figures(&h), (10, 0, 0, 0));
    assert_eq!(h.stats().opts, "ES-");
}

#[test]
fn exponential_growth_reproduces_the_seed_report() {
    // The seed's shttp_sessions: 6 chunks from 20 to 640 units, 1260 in all, 894 in use.
    let h = heap(20, 2000, "ES");
    let units: Vec<_> = (0..894).map(|i| h.alloc(i).unwrap()).collect();
    assert_eq!(figures(&h), (640, 1260, 6, 894));
    drop(units);
}

#[test]
fn linear_growth_adds_the_same_chunk() {
    let h = heap(4, 100, "");
    let _units: Vec<_> = (0..9).map(|i| h.alloc(i).unwrap()).collect();
    assert_eq!(figures(&h), (4, 12, 3, 9));
}

#[test]
fn the_maximum_is_a_hard_limit_unless_unlimited() {
    let h = heap(4, 6, "E");
    let units: Vec<_> = (0..6).map(|i| h.alloc(i).unwrap()).collect();
    assert_eq!(figures(&h).1, 6, "the last chunk is cut to the maximum");
    let err = h.alloc(99).err().expect("full");
    assert_eq!(err.to_string(), "heap `test` is full (6 units in use)");
    drop(units);
    let unlimited = heap(4, 6, "U");
    let _units: Vec<_> = (0..20).map(|i| unlimited.alloc(i).unwrap()).collect();
    assert_eq!(unlimited.stats().allocated, 20);
}

#[test]
fn released_units_are_reused_before_growing() {
    let h = heap(2, 10, "");
    let a = h.alloc(1).unwrap();
    let b = h.alloc(2).unwrap();
    drop(a);
    let c = h.alloc(3).unwrap();
    assert_eq!(figures(&h), (2, 2, 1, 2), "no new chunk");
    assert_eq!(c.with(|v| *v), 3);
    assert_eq!(b.with(|v| *v), 2);
}

#[test]
fn a_unit_lives_until_its_last_reference_goes() {
    let h = heap(2, 10, "");
    let a = h.alloc(7).unwrap();
    let a2 = a.clone();
    drop(a);
    assert_eq!(h.stats().allocated, 1);
    a2.with(|v| *v += 1);
    assert_eq!(a2.with(|v| *v), 8);
    drop(a2);
    assert_eq!(h.stats().allocated, 0);
}

#[test]
fn shrinking_gives_back_empty_trailing_chunks_only() {
    let h = heap(2, 100, "S");
    let units: Vec<_> = (0..6).map(|i| h.alloc(i).unwrap()).collect();
    assert_eq!(figures(&h), (2, 6, 3, 6));
    let mut units = units.into_iter();
    let first = units.next().unwrap();
    drop(units); // the last five
    assert_eq!(
        figures(&h),
        (2, 2, 1, 1),
        "the two trailing chunks went, the first stays"
    );
    assert_eq!(first.with(|v| *v), 0);
    let kept = heap(2, 100, "");
    let units: Vec<_> = (0..6).map(|i| kept.alloc(i).unwrap()).collect();
    drop(units);
    assert_eq!(figures(&kept), (2, 6, 3, 0), "without S the chunks stay");
    drop(first);
    assert_eq!(
        figures(&h),
        (2, 2, 1, 0),
        "the first chunk is the reserve and stays"
    );
}

#[test]
fn many_threads_share_a_heap() {
    let h = heap(8, 10_000, "E");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let u = h.alloc(t * 1000 + i).unwrap();
                    assert_eq!(u.with(|v| *v), t * 1000 + i);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(h.stats().allocated, 0);
}

#[test]
fn the_registry_lists_live_heaps_only() {
    let registry = HeapRegistry::default();
    let a = heap(1, 1, "");
    let b = heap(1, 1, "");
    registry.register(&a);
    registry.register(&b);
    assert_eq!(registry.stats().len(), 2);
    drop(b);
    assert_eq!(registry.stats().len(), 1);
}
