"""Comment readers: the three formats, skipped entries, hostile XML and text, speed on 100k comments."""
from __future__ import annotations

import json
import time

import pytest

from danmask.danmaku.comments import MAX_TEXT_CHARS, Comment, load_comments
from danmask.errors import CommentError

XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<i><chatserver>chat.bilibili.com</chatserver><chatid>1</chatid>\n'


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_bilibili_xml_modes_fields_and_skips(tmp_path):
    body = "\n".join([
        '<d p="12.5,1,25,16777215,1600000000,0,abcd,101,10">前方高能</d>',
        '<d p="3.25,4,36,255,1600000000,0,ef01,102">bottom</d>',
        '<d p="7,5,18,65280,1600000000,0,ef01,103">top</d>',
        '<d p="1,6,25,0,1600000000,0,ef01,104">reverse</d>',
        '<d p="2,2,25,0">scroll mode 2</d>',
        '<d p="2,7,25,0,1,0,x,105">[0,0,"1-1",4.5,"advanced"]</d>',  # mode 7: skipped
        '<d p="2,8,25,0,1,0,x,106">code</d>',  # mode 8: skipped
        '<d p="abc,1,25,0">bad time</d>',
        '<d p="1,1">too few fields</d>',
        '<d>no p</d>',
        '<d p="1,1,25,0">   </d>',  # empty text
        '<d p="-1,1,25,0">negative time</d>',
        '<d p="1,1,25,99999999">colour out of range</d>',
    ])
    loaded = load_comments(write(tmp_path, "c.xml", XML_HEAD + body + "</i>"))
    assert loaded.format == "bilibili-xml"
    assert [c.time_s for c in loaded.comments] == [1.0, 2.0, 3.25, 7.0, 12.5]  # sorted by time
    first = loaded.comments[-1]
    assert (first.mode, first.size, first.color, first.text, first.user, first.id) == \
        ("scroll", 25, 0xFFFFFF, "前方高能", "abcd", "101")
    assert [c.mode for c in loaded.comments] == ["reverse", "scroll", "bottom", "top", "scroll"]
    assert loaded.skipped == {"mode 7 (unsupported)": 1, "mode 8 (unsupported)": 1, "bad attributes": 3,
                              "empty text": 1, "bad values": 2}
    assert loaded.skipped_total == 8
    assert "skipped 8" in loaded.summary()


def test_hostile_text_is_kept_as_plain_data(tmp_path):
    body = ('<d p="1,1,25,16777215">&lt;img src=x onerror=alert(1)&gt;</d>'
            '<d p="2,1,25,16777215">&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;</d>'
            '<d p="3,1,25,16777215"><![CDATA[<b>bold?</b> \'; drawtext=text=pwn]]></d>'
            '<d p="4,1,25,16777215">line\none\ttwo\r\nthree</d>')
    loaded = load_comments(write(tmp_path, "h.xml", XML_HEAD + body + "</i>"))
    assert [c.text for c in loaded.comments] == [
        "<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>",
        "<b>bold?</b> '; drawtext=text=pwn", "line one two three"]


def test_doctype_and_entities_are_rejected(tmp_path):
    laughs = ('<?xml version="1.0"?><!DOCTYPE i [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
              '<i><d p="1,1,25,0">&b;</d></i>')
    with pytest.raises(CommentError, match="DOCTYPE/entity declarations are not allowed"):
        load_comments(write(tmp_path, "bomb.xml", laughs))
    external = ('<?xml version="1.0"?><!DOCTYPE i SYSTEM "file:///etc/passwd"><i><d p="1,1,25,0">x</d></i>')
    with pytest.raises(CommentError, match="not allowed"):
        load_comments(write(tmp_path, "ext.xml", external))


def test_malformed_xml_names_the_line(tmp_path):
    text = XML_HEAD + '<d p="1,1,25,0">ok</d>\n<d p="2,1,25,0">unclosed\n</i>\n'
    with pytest.raises(CommentError, match=r"line 5: malformed XML \(mismatched tag\)"):
        load_comments(write(tmp_path, "bad.xml", text))


def test_truncated_xml_is_an_error(tmp_path):
    text = XML_HEAD + '<d p="1,1,25,0">ok</d>\n<d p="2,1,2'
    with pytest.raises(CommentError, match="malformed XML"):
        load_comments(write(tmp_path, "cut.xml", text))


def test_stray_control_bytes_do_not_sink_the_file(tmp_path):
    text = XML_HEAD.encode() + '<d p="1,1,25,0">bell\x07 here</d></i>'.encode()
    loaded = load_comments(write(tmp_path, "ctl.xml", text))
    assert [c.text for c in loaded.comments] == ["bell here"]


def test_other_xml_is_not_a_comment_file(tmp_path):
    with pytest.raises(CommentError, match="not a Bilibili danmaku file"):
        load_comments(write(tmp_path, "svg.xml", "<svg><rect/></svg>"))


def test_bilibili_json(tmp_path):
    doc = {"code": 0, "data": [
        {"id": 1, "idStr": "1", "progress": 1500, "mode": 1, "fontsize": 25, "color": 16711680,
         "midHash": "ab12", "content": "红色", "ctime": 1600000000},
        {"id": 2, "mode": 5, "content": "progress omitted means 0"},  # protobuf-style default omission
        {"progress": "2500", "mode": 4, "fontsize": 18, "color": 255, "content": "string numbers"},
        {"progress": 100, "mode": 7, "content": "advanced"},
        {"progress": 100, "mode": 1},  # no text
        {"progress": 100, "mode": 1.5, "content": "fractional mode"},
        "not an object",
    ]}
    loaded = load_comments(write(tmp_path, "b.json", json.dumps(doc, ensure_ascii=False)))
    assert loaded.format == "bilibili-json"
    assert [(c.time_s, c.mode, c.size, c.color, c.text) for c in loaded.comments] == [
        (0.0, "top", 25, 0xFFFFFF, "progress omitted means 0"),
        (1.5, "scroll", 25, 0xFF0000, "红色"),
        (2.5, "bottom", 18, 255, "string numbers")]
    assert loaded.comments[1].user == "ab12" and loaded.comments[1].id == "1"
    assert loaded.skipped == {"mode 7 (unsupported)": 1, "bad entry": 2, "not an object or array": 1}


def test_nested_elems_json(tmp_path):
    doc = {"data": {"elems": [{"progress": 10, "mode": 1, "content": "x"}]}}
    loaded = load_comments(write(tmp_path, "n.json", json.dumps(doc)))
    assert [c.text for c in loaded.comments] == ["x"]


def test_dplayer_v3_json(tmp_path):
    doc = {"code": 0, "version": 3, "data": [
        [4.2, 0, 16777215, "alice", "scrolls"],
        [1.0, 1, 16711680, "bob", "top one"],
        [2.0, 2, 65280, "carol", "bottom one"],
        [3.0, 9, 0, "dave", "unknown type"],
        [3.0, 0, 0, "eve"],  # too short
        ["NaN", 0, 0, "x", "nan time"],
    ]}
    loaded = load_comments(write(tmp_path, "dp.json", json.dumps(doc)))
    assert loaded.format == "dplayer-json"
    assert [(c.time_s, c.mode, c.color, c.user, c.text) for c in loaded.comments] == [
        (1.0, "top", 0xFF0000, "bob", "top one"), (2.0, "bottom", 0x00FF00, "carol", "bottom one"),
        (4.2, "scroll", 0xFFFFFF, "alice", "scrolls")]
    assert loaded.skipped == {"unsupported type": 1, "bad entry": 2}


def test_malformed_json_names_the_line(tmp_path):
    with pytest.raises(CommentError, match=r"line 3: malformed JSON"):
        load_comments(write(tmp_path, "bad.json", '{"data": [\n[1, 0, 0, "a", "b"],\n[2, 0, 0 "a", "b"]]}'))


@pytest.mark.parametrize("content, message", [
    (b"", "empty comment file"),
    (b"\x00\x01binary", "not a comment file"),
    (b'{"code": 0}', "no comment list"),
    (b'["\xff\xfe"]', "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_bad_files(tmp_path, content, message):
    with pytest.raises(CommentError, match=message):
        load_comments(write(tmp_path, "x.json", content))


def test_missing_file(tmp_path):
    with pytest.raises(CommentError, match="cannot read comment file"):
        load_comments(tmp_path / "nope.xml")


def test_long_text_is_cut():
    long = "长" * 1000
    loaded_text = Comment(0, "scroll", long).text
    assert len(loaded_text) == 1000  # the dataclass keeps what it is given; the readers cut
    from danmask.danmaku.comments import clean_text

    assert len(clean_text(long)) == MAX_TEXT_CHARS and clean_text(long).endswith("\u2026")


def test_comment_validation():
    with pytest.raises(CommentError, match="mode"):
        Comment(0, "sideways", "x")
    with pytest.raises(CommentError, match="time"):
        Comment(float("inf"), "scroll", "x")
    with pytest.raises(CommentError, match="text"):
        Comment(0, "scroll", "")


def test_100k_comment_xml_loads_in_seconds(tmp_path):
    lines = [XML_HEAD]
    for i in range(100_000):
        lines.append(f'<d p="{(i * 7919) % 6000 / 10:.3f},{(1, 1, 4, 5, 6, 7)[i % 6]},25,{i * 97 % 16777216},'
                     f'1600000000,0,u{i},{i}">弹幕 number {i}</d>\n')
    lines.append("</i>")
    path = write(tmp_path, "big.xml", "".join(lines))
    started = time.perf_counter()
    loaded = load_comments(path)
    elapsed = time.perf_counter() - started
    assert len(loaded.comments) + loaded.skipped_total == 100_000
    assert loaded.skipped == {"mode 7 (unsupported)": 16_666}
    assert elapsed < 5.0, f"100k comments took {elapsed:.2f} s"


def test_gzip_and_raw_deflate_as_bilibili_serves_it(tmp_path):
    import gzip
    import zlib

    xml = (XML_HEAD + '<d p="1,1,25,16777215">压缩</d></i>').encode("utf-8")
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    for name, data in (("c.xml.gz", gzip.compress(xml)), ("list.so", deflate.compress(xml) + deflate.flush())):
        assert [c.text for c in load_comments(write(tmp_path, name, data)).comments] == ["压缩"]
    with pytest.raises(CommentError, match="damaged compressed"):
        load_comments(write(tmp_path, "cut.gz", gzip.compress(xml * 50)[:60]))
