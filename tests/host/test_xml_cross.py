"""agent.codecs.xml_flat against the CPython standard library's XML parser:
what we write, xml.etree reads the same; what etree writes, we read the same;
and whatever etree refuses as not well-formed, we refuse too."""

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.codecs import xml_bio, xml_flat
from agent.codecs.xml_flat import XmlError

_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
names = st.builds(lambda a, b: a + b, st.sampled_from(_START),
                  st.text(alphabet=_START + "0123456789", max_size=12))


def _xml_char(c):
    n = ord(c)
    return n in (9, 10, 13) or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000


# Every character XML 1.0 can carry, with the special ones well represented.
values = st.one_of(
    st.text(st.characters(codec="utf-8").filter(_xml_char), max_size=40),
    st.text(alphabet="&<>\"' \t\r\n;#x]-!?=", max_size=20),
    st.integers(min_value=-(2 ** 63), max_value=2 ** 63),
    st.floats(allow_nan=False, allow_infinity=False),
)
documents = st.tuples(names, st.dictionaries(names, values, max_size=12))


def _etree_fields(text):
    root = ET.fromstring(text)
    assert all(len(child) == 0 and not child.attrib for child in root)
    return root.tag, {child.tag: child.text or "" for child in root}


@settings(max_examples=300, deadline=None)
@given(documents)
def test_our_encoding_parsed_by_etree(doc):
    root, fields = doc
    text = xml_flat.encode(root, list(fields.items()))
    want = {k: v if isinstance(v, str) else str(v) for k, v in fields.items()}
    assert _etree_fields(text) == (root, want)
    assert xml_flat.decode(text, max_bytes=1 << 20) == (root, want)
    # Field order is the caller's (MicroPython dicts would not keep it).
    assert [child.tag for child in ET.fromstring(text)] == list(fields)


@settings(max_examples=300, deadline=None)
@given(documents, st.booleans())
def test_etree_serialisation_decoded_alike(doc, declaration):
    root, fields = doc
    elem = ET.Element(root)
    for tag, value in fields.items():
        ET.SubElement(elem, tag).text = value if isinstance(value, str) else str(value)
    text = ET.tostring(elem, encoding="unicode", xml_declaration=declaration)
    got_root, got = xml_flat.decode(text, max_bytes=1 << 20)
    etree_root, want = _etree_fields(text)
    assert got_root == etree_root == root
    # The one chosen difference: whitespace around a value is padding to us.
    assert got == {k: v.strip(" \t\r\n") for k, v in want.items()}


DOCUMENTED = [
    """<Request>
<Operation>TimeLog_v2</Operation>
<LogId>LOG001</LogId>
<UserId>EMP123</UserId>
<PunchTime>2026-05-12T09:15:30</PunchTime>
<GMT>8</GMT>
<AttendStat>0</AttendStat>
<APStat>1</APStat>
<Action>FP</Action>
<JobCode>0</JobCode>
<Photo>base64_encoded_photo...</Photo>
<Latitude>40.7128</Latitude>
<Longitude>-74.0060</Longitude>
</Request>""",
    """<!-- Device sends admin action (AdminLog_v2) -->
<Request>
<Operation>AdminLog_v2</Operation>
<LogId>ADMIN001</LogId>
<AdminId>ADMIN</AdminId>
<UserId>EMP456</UserId>
<Action>EnrollFP</Action>
<Time>2026-05-12T10:30:00</Time>
</Request>""",
    """<Response>
<Result>success</Result>
<Session>sess_1234567890_abc123</Session>
<DeviceSerialNo>FK628001</DeviceSerialNo>
</Response>""",
    '<?xml version="1.0" encoding="UTF-8"?><Request><Operation>KeepAlive</Operation></Request>',
    "<R><A>&#x41;&#66;&lt;&amp;<!-- c --></A><B/></R>",
]


@pytest.mark.parametrize("text", DOCUMENTED)
def test_documented_messages_decoded_like_etree(text):
    assert xml_flat.decode(text) == _etree_fields(text)


@pytest.mark.parametrize("text", [
    "<R><A>1</B></R>", "<R><A>1</A>", "<R><A>&bogus;</A></R>", "<R><A>a & b</A></R>", "<R/><S/>",
    "<R><A>&#0;</A></R>", "<R><A>\x01</A></R>", "lead<R/>", "", "<1R/>", "<R><A>1</A",
    '<?xml version="1.0"?><?xml version="1.0"?><R/>',
])
def test_not_well_formed_refused_by_both(text):
    with pytest.raises(ET.ParseError):
        ET.fromstring(text)
    with pytest.raises(XmlError):
        xml_flat.decode(text)


@pytest.mark.parametrize("text", [
    # Well-formed XML outside the flat subset we accept: refused on purpose.
    '<!DOCTYPE r [<!ENTITY a "x">]><r><A>&a;</A></r>',
    "<R><A><B>1</B></A></R>",
    '<R><A k="v">1</A></R>',
    "<R><A><![CDATA[1]]></A></R>",
    "<R>mixed<A>1</A></R>",
    "<R><A>1</A><A>2</A></R>",
    "<R><?pi x?><A>1</A></R>",
])
def test_well_formed_outside_the_subset_refused(text):
    ET.fromstring(text)
    with pytest.raises(XmlError):
        xml_flat.decode(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2 ** 31), names, st.text(st.characters(codec="utf-8").filter(_xml_char), max_size=30),
       st.integers(-12, 14), st.one_of(st.none(), st.floats(-90, 90)))
def test_session_records_parse_with_etree(rid, user, photo, gmt, lat):
    value = {"user": user, "time": "2026-05-12T09:15:30", "gmt": gmt, "photo": photo}
    if lat is not None:
        value["lat"] = lat
    session = xml_bio.Session("FK628001", "cloud_001")
    session.hello()
    session.receive("<Response><Result>success</Result><Session>s</Session></Response>")
    root, fields = _etree_fields(session.record([rid, 0, "punch", "punch", value]))
    assert root == "Request" and fields["Operation"] == "TimeLog_v2"
    assert fields["LogId"] == str(rid) and fields["UserId"] == user and fields["Photo"] == photo
    assert fields["GMT"] == str(gmt)
    if lat is not None:
        assert float(fields["Latitude"]) == lat
