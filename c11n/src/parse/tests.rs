//! Unit tests of the parser: the syntax tree it builds, and its errors and recovery.

use super::*;
use crate::syntax::{RawKind, Setting};

fn ok(text: &str) -> Document {
    match parse("c11n", text) {
        Ok(doc) => doc,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

fn errors(text: &str) -> String {
    match parse("c11n", text) {
        Ok(doc) => panic!("parsed without errors: {doc:?}"),
        Err(errors) => errors.to_string(),
    }
}

fn settings(doc: &Document) -> Vec<&Setting> {
    doc.settings().collect()
}

fn kind(text: &str) -> RawKind {
    let doc = ok(text);
    settings(&doc)[0].value.kind.clone()
}

fn bare(s: &str) -> RawKind {
    RawKind::Bare(s.to_owned())
}

#[test]
fn settings_with_locations() {
    let doc = ok("a = 1\n  bb=two # note\n");
    let all = settings(&doc);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].key, "bb");
    assert_eq!(all[1].key_location, Location { line: 2, column: 3 });
    assert_eq!(all[1].value.kind, bare("two"));
    assert_eq!(all[1].value.location, Location { line: 2, column: 6 });
}

#[test]
fn quoted_strings_and_escapes() {
    assert_eq!(
        kind(r#"k = "a \"b\" \\ \n\t\r""#),
        RawKind::Quoted("a \"b\" \\ \n\t\r".into())
    );
    assert_eq!(kind(r#"k = """#), RawKind::Quoted(String::new()));
    assert_eq!(
        kind("k = \"x # not a comment\" # comment"),
        RawKind::Quoted("x # not a comment".into())
    );
}

#[test]
fn lists() {
    let list = |items: &[&str]| items.iter().map(|s| bare(s)).collect::<Vec<_>>();
    let strip = |k: RawKind| match k {
        RawKind::List(items) => items.into_iter().map(|v| v.kind).collect::<Vec<_>>(),
        other => panic!("not a list: {other:?}"),
    };
    assert_eq!(strip(kind("k = {}")), list(&[]));
    assert_eq!(strip(kind("k = {a, b,}")), list(&["a", "b"]));
    assert_eq!(
        strip(kind("k = {\n  a, # first\n  b\n}\n")),
        list(&["a", "b"])
    );
    assert_eq!(
        strip(kind("k = {\"x y\", 2}"))[0],
        RawKind::Quoted("x y".into())
    );
}

#[test]
fn bare_value_runs_to_end_of_line_when_more_text_follows() {
    assert_eq!(kind("k = a b  \n"), RawKind::Line("a b".into()));
    assert_eq!(
        kind("k = a \"b\" # c\n"),
        RawKind::Line("a \"b\" # c".into())
    );
    assert_eq!(kind("k = a=b"), RawKind::Line("a=b".into()));
    assert_eq!(kind("k = a\r\n"), bare("a"));
    assert_eq!(kind("k = 110 # comment"), bare("110"));
    let doc = ok("pop { port = 110 }");
    let section = doc.sections().next().unwrap();
    assert_eq!(section.settings[0].value.kind, bare("110"));
}

#[test]
fn the_seed_query_is_kept_verbatim() {
    let line = r#"select maildrop from EMailUsers where EMailUsers.password="PASSWORD(%p)" and EMailUsers.user="%u""#;
    assert_eq!(kind(&format!("q = {line}\n")), RawKind::Line(line.into()));
}

#[test]
fn sections_titled_and_not() {
    let doc = ok("database FOOFOO {\n name = x\n}\npop\n{\n}\ndatabase \"two words\" {}\n");
    let sections: Vec<_> = doc.sections().collect();
    assert_eq!(
        sections[0].title,
        Some((
            "FOOFOO".into(),
            Location {
                line: 1,
                column: 10
            }
        ))
    );
    assert_eq!(sections[0].settings.len(), 1);
    assert_eq!(sections[1].name, "pop");
    assert_eq!(sections[1].title, None);
    assert_eq!(sections[2].title.as_ref().unwrap().0, "two words");
}

#[test]
fn value_and_equals_may_be_on_later_lines() {
    assert_eq!(kind("k\n= v"), bare("v"));
    assert_eq!(kind("k =\n  v"), bare("v"));
    assert_eq!(kind("k =\n\"v\""), RawKind::Quoted("v".into()));
}

#[test]
fn empty_and_comment_only_files() {
    assert!(ok("").items.is_empty());
    assert!(ok("\u{feff}# only a comment\n\n").items.is_empty());
}

#[test]
fn missing_equals() {
    assert_eq!(
        errors("identity pop\nuid = 1\n"),
        "c11n:1:10: error: expected `=` after `identity`, found `pop`\n  help: write `identity = pop`"
    );
    assert_eq!(
        errors("identity\nuid = 1\n"),
        "c11n:1:9: error: expected `=` after `identity`, found end of line"
    );
}

#[test]
fn missing_value() {
    assert_eq!(
        errors("a =\nb = 1\n"),
        "c11n:1:4: error: expected a value for `a`, found end of line\n  help: to set an empty string, write `a = \"\"`"
    );
    assert!(
        errors("pop { a = }").starts_with("c11n:1:11: error: expected a value for `a`, found `}`")
    );
}

#[test]
fn string_errors() {
    assert_eq!(
        errors("a = \"open\nb = 1\n"),
        "c11n:1:5: error: unterminated string `\"open`: expected a closing `\"` before end of line\n  \
         help: a string ends on the line it starts on; write a line break as `\\n`"
    );
    assert_eq!(
        errors("a = \"x\\qy\"\n"),
        "c11n:1:7: error: unknown escape `\\q` in string `\"x\\qy\"`\n  \
         help: the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\r`"
    );
}

#[test]
fn unexpected_text_after_value() {
    let e = errors("a = \"x\" y\n");
    assert!(
        e.starts_with("c11n:1:9: error: unexpected `y` after the value of `a`"),
        "{e}"
    );
    assert_eq!(kind("a = x, y\n"), RawKind::Line("x, y".into()));
    let e = errors("b = z, # c\n");
    assert!(
        e.starts_with("c11n:1:6: error: unexpected `,` after the value of `b`"),
        "{e}"
    );
}

#[test]
fn unclosed_and_stray_braces() {
    let e = errors("pop {\n a = 1\n");
    assert!(
        e.starts_with("c11n:1:1: error: section `pop` is never closed"),
        "{e}"
    );
    assert_eq!(
        errors("}\n"),
        "c11n:1:1: error: unexpected `}`: no section is open\n  help: remove it, or look above for a `}` too many"
    );
    let e = errors("pop { q = select a }\n");
    assert!(
        e.contains("the value of `q` on line 1 runs to the end of its line"),
        "{e}"
    );
}

#[test]
fn nested_section_is_skipped_and_outer_continues() {
    let e = errors("pop {\n tls {\n  a = 1\n }\n port = 1\n}\n");
    assert_eq!(
        e,
        "c11n:2:2: error: section `tls` cannot be inside section `pop`\n  \
         help: sections do not nest; if `pop` should end before this line, add its `}`"
    );
    let (doc, _) = parse_recovering("c11n", "pop {\n tls {\n  a = 1\n }\n port = 1\n}\n");
    let pop = doc.sections().next().unwrap();
    assert_eq!(pop.settings.len(), 1);
    assert_eq!(pop.settings[0].key, "port");
}

#[test]
fn list_errors() {
    let e = errors("a = {x, y\nb = 2\n");
    assert!(
        e.starts_with(
            "c11n:1:5: error: list for `a` is never closed: expected `}` before `b` on line 2"
        ),
        "{e}"
    );
    let e = errors("a = {x y}\n");
    assert!(
        e.starts_with("c11n:1:8: error: expected `,` or `}` after list element `x`, found `y`"),
        "{e}"
    );
    assert!(errors("a = {{x}}").contains("lists cannot be nested"));
    assert!(errors("a = {,}").contains("expected a list element or `}`, found `,`"));
}

#[test]
fn reports_every_error_and_keeps_good_lines() {
    let text = "a 1\nb = \"x\\q\"\nc = ok\n}\nd = {1\n";
    let (doc, diagnostics) = parse_recovering("c11n", text);
    assert_eq!(diagnostics.len(), 4, "{diagnostics:?}");
    let keys: Vec<_> = doc.settings().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["b", "c"]);
}

#[test]
fn section_header_with_two_titles() {
    let e = errors("database FOO BAR {\n name = x\n}\nuid = 1\n");
    assert_eq!(
        e,
        "c11n:1:14: error: expected `{` after `database FOO`, found `BAR`\n  help: a section header is `name {` or `name TITLE {`"
    );
}

/// Arbitrary input never panics or hangs: a cheap stand-in for the fuzzer.
#[test]
fn survives_garbage() {
    let pieces = [
        "a", " ", "\n", "=", "{", "}", ",", "#", "\"", "\\", "x y", "é", "\r", "\t", "0x", "-",
        "\u{feff}", "\u{a0}",
    ];
    // A small deterministic xorshift generator strings pieces together.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 24) as usize;
        let text: String = (0..len)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        let _ = parse("fuzz", &text);
        let _ = crate::load("fuzz", &text, &crate::Vocabulary::core());
    }
}
