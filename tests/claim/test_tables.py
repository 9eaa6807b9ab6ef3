"""Report text from configs and files (spectral/claim/_tables.py): literal in report.md."""

import pytest

from spectral.claim._tables import markdown_safe, markdown_text


@pytest.mark.parametrize("text, expected", [
    ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
    ("<!-- x --> <?php <a href=x>", "&lt;!-- x --> &lt;?php &lt;a href=x>"),
    ("&amp; &#60; a & b", "&amp;amp; &amp;#60; a & b"),
    ("a | b", "a \\| b"),
    ("line\nnext\r\tend", "line next  end"),
    ("[click](javascript:alert(1)) `code` back\\slash", "\\[click\\](javascript:alert(1)) \\`code\\` back\\\\slash"),
    ("case did not overfit (median test gap 0.02 < 1.1)", "case did not overfit (median test gap 0.02 < 1.1)"),
])
def test_markdown_text_neutralises_html_links_and_table_breaks(text, expected):
    assert markdown_text(text) == expected


def test_markdown_safe_escapes_keys_and_values_and_keeps_the_rest():
    data = {"<b>": ["a|b", 1.5, None, True], "n": {"reason": "x\ny"}}
    assert markdown_safe(data) == {"&lt;b>": ["a\\|b", 1.5, None, True], "n": {"reason": "x y"}}
