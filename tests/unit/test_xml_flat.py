from agent.codecs import xml_flat as xf
from agent.codecs.xml_flat import XmlError

from support import raises


def test_encode_is_the_documented_shape_in_field_order():
    text = xf.encode("Request", [("Operation", "Register"), ("DeviceSerialNo", "FK628001"),
                                 ("CloudId", "cloud_001")])
    assert text == ("<Request>\n<Operation>Register</Operation>\n<DeviceSerialNo>FK628001</DeviceSerialNo>\n"
                    "<CloudId>cloud_001</CloudId>\n</Request>")


def test_encode_numbers_and_empty_root():
    assert xf.encode("Response", []) == "<Response>\n</Response>"
    assert "<GMT>8</GMT>" in xf.encode("R", [("GMT", 8)])
    assert "<Lat>40.5</Lat>" in xf.encode("R", [("Lat", 40.5)])
    assert "<Neg>-3</Neg>" in xf.encode("R", [("Neg", -3)])


def test_encode_escapes_all_five_entities():
    text = xf.encode("R", [("A", "a&b<c>d\"e'f")])
    assert "<A>a&amp;b&lt;c&gt;d&quot;e&apos;f</A>" in text


def test_encode_keeps_padding_and_cr_as_character_references():
    text = xf.encode("R", [("A", " x\r\ny\t")])
    assert "<A>&#32;x&#13;\ny&#9;</A>" in text
    assert xf.decode(text)[1]["A"] == " x\r\ny\t"


def test_encode_refuses_bad_names_and_values():
    for name in ("", "1abc", "a-b", "a b", "a:b", "<x>", "é"):
        raises(XmlError, xf.encode, "R", [(name, "v")])
        raises(XmlError, xf.encode, name, [])
    for value in (None, True, [1], {"a": 1}, b"x"):
        raises(XmlError, xf.encode, "R", [("A", value)])
    e = raises(XmlError, xf.encode, "R", [("A", "bell\x07")])
    assert "U+0007" in str(e)
    # What the checks done in C take, the per-character loop would have taken:
    # a lone surrogate is refused as XML, not as a str that cannot encode.
    assert "U+D800" in str(raises(XmlError, xf.encode, "R", [("A", "ok\ud800")]))
    for name in ("Ab\u00e9", "\u00aa", "Z\u0661"):   # letters and digits outside ASCII
        assert not xf.is_name(name)


def test_names_accepted():
    for name in ("a", "_", "A_b9", "TimeLog_v2", "x" * 100):
        assert xf.is_name(name)
    assert not xf.is_name("9a")


def test_round_trip_of_awkward_values():
    values = ["", " ", "plain", "&amp; literally", "<![CDATA[x]]>", "<!DOCTYPE a>", "a\nb", "tab\there",
              "ünïcödé ✓ 😀", "]]>", "&#65;", "-->", "\t\n lead and trail \n\t"]
    fields = [("F%d" % i, v) for i, v in enumerate(values)]
    root, got = xf.decode(xf.encode("Request", fields))
    assert root == "Request"
    for tag, value in fields:
        assert got[tag] == value, (tag, got[tag], value)


def test_decode_documented_register_response():
    text = ("<Response>\n<Result>success</Result>\n<Session>sess_1234567890_abc123</Session>\n"
            "<DeviceSerialNo>FK628001</DeviceSerialNo>\n</Response>")
    assert xf.decode(text) == ("Response", {"Result": "success", "Session": "sess_1234567890_abc123",
                                            "DeviceSerialNo": "FK628001"})


def test_decode_declaration_comments_whitespace_and_padding():
    text = ('  <?xml version="1.0" encoding="UTF-8"?>\n<!-- vendor -->\n<Message>\r\n'
            "  <Response> TimeLog_v2 </Response>\n<!-- between -->\t<TransID>\n 7 \n</TransID>\n"
            "  <Result>O<!-- inside -->K</Result><Empty/><Empty2 ></Empty2>\n</Message>\n<!-- after -->\n")
    assert xf.decode(text) == ("Message", {"Response": "TimeLog_v2", "TransID": "7", "Result": "OK",
                                           "Empty": "", "Empty2": ""})


def test_decode_entities_and_character_references():
    root, f = xf.decode("<R><A>&lt;&gt;&amp;&quot;&apos;</A><B>&#65;&#x42;&#x1F600;&#233;</B></R>")
    assert f == {"A": "<>&\"'", "B": "AB\U0001F600\u00e9"}
    # Raw CR is normalised like any XML parser does; a referenced one is kept.
    assert xf.decode("<R><A>a\r\nb\rc&#13;</A></R>")[1]["A"] == "a\nb\nc\r"


def test_decode_self_closing_root_and_tag_whitespace():
    assert xf.decode("<Request/>") == ("Request", {})
    assert xf.decode("<Request >\n<A >1</A >\n</Request\n>") == ("Request", {"A": "1"})


def _refused(text, words, **kw):
    e = raises(XmlError, xf.decode, text, *([kw["max_bytes"]] if "max_bytes" in kw else []))
    assert words in str(e), (text, str(e))


def test_decode_refuses_dtds_and_unknown_entities():
    laughs = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
              '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">\n]>\n<Request><A>&lol2;</A></Request>')
    _refused(laughs, "no DTDs")
    _refused('<!ENTITY x SYSTEM "file:///etc/passwd"><R/>', "no DTDs")
    _refused('<R><!DOCTYPE x><A>1</A></R>', "no DTDs")
    _refused("<R><A>&xxe;</A></R>", "unknown entity &xxe;")
    _refused("<R><A>&nbsp;</A></R>", "unknown entity")
    _refused("<R><A>a & b</A></R>", "&amp;")
    _refused("<R><A>&#;</A></R>", "bad character reference")
    _refused("<R><A>&#x;</A></R>", "bad character reference")
    _refused("<R><A>&#12a;</A></R>", "bad character reference")
    _refused("<R><A>&#0;</A></R>", "not an XML character")
    _refused("<R><A>&#xD800;</A></R>", "not an XML character")


def test_decode_refuses_structure_outside_the_flat_subset():
    _refused("<R><A><B>1</B></A></R>", "nested element <B>")
    _refused("<R><A>1</B></R>", "mismatched tags")
    _refused("<R><A>1</A></S>", "mismatched tags")
    _refused("<R><A>1</A>", "unclosed <R>")
    _refused("<R><A>1", "unclosed <A>")
    _refused("<R><A>1</A", "unterminated tag")
    _refused("<R>text<A>1</A></R>", "text directly inside <R>")
    _refused("<R><A>1</A>text</R>", "text directly inside <R>")
    _refused("<R><A>1</A><A>2</A></R>", "repeated <A>")
    _refused('<R><A x="1">1</A></R>', "attributes are not supported")
    _refused('<R id="1"/>', "attributes are not supported")
    _refused("<R><A><![CDATA[1]]></A></R>", "CDATA")
    _refused("<R><![CDATA[1]]></R>", "CDATA")
    _refused("<R/><S/>", "after the root element")
    _refused("<R/>tail", "after the root element")
    _refused("lead<R/>", "text before the root element")
    _refused("", "no root element")
    _refused("   \n", "no root element")
    _refused("</R>", "unexpected </R>")
    _refused("<1R/>", "bad element name")
    _refused("<R><!-- open", "unterminated comment")
    _refused("<?php echo 1 ?><R/>", "processing instructions")
    _refused('<R><?xml version="1.0"?></R>', "processing instructions")
    _refused('<?xml version="1.0"?><?xml version="1.0"?><R/>', "processing instructions")
    _refused("<R><A>bell\x07</A></R>", "U+0007")


def test_decode_limits_checked_before_parsing():
    big = "<R><A>" + "x" * 200 + "</A></R>"
    e = raises(XmlError, xf.decode, big, 100)
    assert "100 byte limit" in str(e)
    # The limit counts UTF-8 bytes, not characters.
    raises(XmlError, xf.decode, "<R><A>" + "\u00e9" * 60 + "</A></R>", 100)
    assert xf.decode("<R><A>" + "\u00e9" * 40 + "</A></R>", 100)[1]["A"] == "\u00e9" * 40
    # Far over the limit and not even XML: refused for its size, not parsed.
    e = raises(XmlError, xf.decode, "<!DOCTYPE " + "y" * 5000, 1000)
    assert "limit" in str(e)
    many = xf.encode("R", [("F%d" % i, i) for i in range(5)])
    assert len(xf.decode(many, 16384, 5)[1]) == 5
    e = raises(XmlError, xf.decode, many, 16384, 4)
    assert "more than 4 fields" in str(e)


def test_decode_bytes_input():
    assert xf.decode(b"<R><A>\xc3\xa9</A></R>") == ("R", {"A": "\u00e9"})
    raises(XmlError, xf.decode, b"<R>" + b"x" * 50 + b"</R>", 20)
    raises(XmlError, xf.decode, 12)
