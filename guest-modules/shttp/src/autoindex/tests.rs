//! The listing against lines nginx 1.22 wrote for the same entries (with `charset utf-8`,
//! under which nginx counts a name's width in characters, as shttp always does).

use super::*;

/// 02 Dec 2026 15:09:45 and 03 Feb 2020 04:05:06, UTC.
const DEC_2026: i64 = 1_796_224_185;
const FEB_2020: i64 = 1_580_702_706;

fn file(name: &str, mtime: i64, size: u64) -> Listed {
    Listed {
        name: name.into(),
        directory: false,
        stat: Some((mtime, size)),
    }
}

fn dir(name: &str) -> Listed {
    Listed {
        name: name.into(),
        directory: true,
        stat: Some((DEC_2026, 4096)),
    }
}

fn lines(page: &str) -> Vec<&str> {
    page.lines().filter(|l| l.starts_with("<a href")).collect()
}

#[test]
fn lines_are_nginx_s_columns() {
    let page = html(
        "/sub/",
        &[
            dir("deeper"),
            file("a.txt", FEB_2020, 3),
            file("big.bin", DEC_2026, 123_456),
            file(
                "café-ünïcödé-long-name-with-many-characters-beyond-fifty.txt",
                DEC_2026,
                0,
            ),
            file(&format!("{}.txt", "x".repeat(60)), DEC_2026, 0),
        ],
    );
    let nginx = [
        "<a href=\"../\">../</a>",
        "<a href=\"deeper/\">deeper/</a>                                            02-Dec-2026 15:09                   -",
        "<a href=\"a.txt\">a.txt</a>                                              03-Feb-2020 04:05                   3",
        "<a href=\"big.bin\">big.bin</a>                                            02-Dec-2026 15:09              123456",
        "<a href=\"caf%C3%A9-%C3%BCn%C3%AFc%C3%B6d%C3%A9-long-name-with-many-characters-beyond-fifty.txt\">café-ünïcödé-long-name-with-many-characters-bey..&gt;</a> 02-Dec-2026 15:09                   0",
        "<a href=\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.txt\">xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..&gt;</a> 02-Dec-2026 15:09                   0",
    ];
    assert_eq!(lines(&page), nginx);
}

#[test]
fn a_directory_name_that_fills_the_column_loses_its_shown_slash_as_in_nginx() {
    let page = html("/", &[dir(&"d".repeat(49)), dir(&"e".repeat(50))]);
    let d = "d".repeat(49);
    let e = "e".repeat(50);
    assert_eq!(
        lines(&page),
        [
            format!("<a href=\"{d}/\">{d}/</a> 02-Dec-2026 15:09                   -"),
            format!("<a href=\"{e}/\">{e}</a> 02-Dec-2026 15:09                   -"),
        ]
    );
}

#[test]
fn hrefs_are_encoded_names_escaped_and_padding_counts_what_is_shown() {
    let page = html(
        "/",
        &[
            file("a file & more.txt", DEC_2026, 1),
            file("<b>#?%.txt", DEC_2026, 2),
            file("café", DEC_2026, 3),
        ],
    );
    let [amp, tag, cafe] = lines(&page)[..] else {
        panic!("{page}");
    };
    assert!(amp.starts_with("<a href=\"a%20file%20%26%20more.txt\">a file &amp; more.txt</a>"));
    assert!(tag.starts_with("<a href=\"%3Cb%3E%23%3F%25.txt\">&lt;b&gt;#?%.txt</a>"));
    assert!(cafe.starts_with("<a href=\"caf%C3%A9\">café</a>"));
    // The date starts in the same column on every line, counted in characters shown.
    for line in [amp, tag, cafe] {
        let shown = line.split("\">").nth(1).unwrap();
        let text = shown
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
        let column = text.replace("</a>", "").chars().position(|c| c == '0');
        assert_eq!(column, Some(NAME_COLUMN + 1), "{line}");
    }
}

#[test]
fn an_entry_that_could_not_be_opened_has_dashes() {
    let locked = Listed {
        name: "locked.txt".into(),
        directory: false,
        stat: None,
    };
    let page = html("/", std::slice::from_ref(&locked));
    assert!(
        lines(&page)[0].ends_with(&format!(" -{} {:>19}", " ".repeat(16), "-")),
        "{page}"
    );
    assert_eq!(
        json(&[locked]),
        "[\n{ \"name\":\"locked.txt\", \"type\":\"file\" }\n]\n"
    );
}

#[test]
fn the_root_has_no_parent_link() {
    assert!(!html("/", &[]).contains("../"));
}

#[test]
fn json_is_nginx_s_shape_and_escaped() {
    let text = json(&[
        dir("deeper"),
        file("q\"uote\\back.txt", FEB_2020, 3),
        file("nl\n\t\u{1}x", DEC_2026, 0),
    ]);
    assert_eq!(
        text,
        "[\n\
         { \"name\":\"deeper\", \"type\":\"directory\", \"mtime\":\"Wed, 02 Dec 2026 15:09:45 GMT\" },\n\
         { \"name\":\"q\\\"uote\\\\back.txt\", \"type\":\"file\", \"mtime\":\"Mon, 03 Feb 2020 04:05:06 GMT\", \"size\":3 },\n\
         { \"name\":\"nl\\n\\t\\u0001x\", \"type\":\"file\", \"mtime\":\"Wed, 02 Dec 2026 15:09:45 GMT\", \"size\":0 }\n\
         ]\n"
    );
    assert_eq!(json(&[]), "[\n]\n");
}

#[test]
fn listings_show_what_is_served() {
    let entry = |name: &str, kind| DirEntry {
        name: name.into(),
        exact: true,
        kind,
    };
    let deny = HiddenFiles::Deny;
    let allow = HiddenFiles::Allow;
    assert!(shown(&entry("a.txt", EntryKind::File), deny, false));
    assert!(!shown(&entry(".env", EntryKind::File), deny, true));
    assert!(!shown(&entry(".git", EntryKind::Directory), deny, true));
    assert!(shown(&entry(".env", EntryKind::File), allow, false));
    assert!(shown(
        &entry(".well-known", EntryKind::Directory),
        deny,
        true
    ));
    assert!(!shown(
        &entry(".well-known", EntryKind::Directory),
        deny,
        false
    ));
    assert!(!shown(&entry("fifo", EntryKind::Other), allow, false));
    let lossy = DirEntry {
        exact: false,
        ..entry("bad\u{fffd}", EntryKind::File)
    };
    assert!(!shown(&lossy, allow, false));
}

#[test]
fn directories_sort_first_then_names_bytewise() {
    let mut entries = vec![
        file("b", 0, 0),
        dir("z"),
        file("<tag>", 0, 0),
        file("a", 0, 0),
        dir("c"),
    ];
    sort(&mut entries);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["c", "z", "<tag>", "a", "b"]);
}
