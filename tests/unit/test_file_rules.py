"""What passes between a customer and the reps' thread: the declared size and type, then the bytes."""

from __future__ import annotations

import pytest
import requests

from parley.channels.files import FileRules, content_type_of, download, origin_of
from parley.core.envelope import Attachment
from parley.errors import FileRefused

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(40)
PROGRAM = b"MZ\x90\x00" + bytes(60)
RULES = FileRules(max_bytes=1000, types=("image/*", "application/pdf", "text/plain"))


def photo(**fields: object) -> Attachment:
    return Attachment(**{"content_type": "image/png", "name": "p.png", "size": 100, "origin": "slack",
                         "ref": "https://files.slack.com/x", **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(("data", "found"), [(PNG, "image/png"), (PDF, "application/pdf"),
                                             ("Grüße, order 42\n".encode(), "text/plain"),
                                             (PROGRAM, "application/vnd.microsoft.portable-executable"),
                                             (b"\xff\xfe\x00\x00binary", None)])
def test_a_files_type_is_read_from_its_bytes(data: bytes, found: str | None) -> None:
    assert content_type_of(data) == found


def test_what_the_platform_declares_is_refused_before_any_download() -> None:
    with pytest.raises(FileRefused, match=r"over the 0.001 MB limit"):
        RULES.precheck(photo(size=5000))
    with pytest.raises(FileRefused, match=r"video/mp4 files are not passed on"):
        RULES.precheck(photo(content_type="video/mp4"))
    RULES.precheck(photo(content_type="image/heic"))  # image/* allows it; its bytes decide next
    RULES.precheck(photo(content_type="sticker", size=None))  # a platform's word for it, not a type


def test_the_bytes_decide_and_name_the_file_by_what_they_are() -> None:
    assert RULES.checked(photo(name=""), PNG).name == "file.png"
    assert RULES.checked(photo(), PNG).content_type == "image/png"
    with pytest.raises(FileRefused) as refused:
        RULES.checked(photo(), PROGRAM)  # "image/png", says the platform
    assert refused.value.files == ("p.png (its content is application/vnd.microsoft.portable-executable, "
                                   "which is not passed on)",)
    with pytest.raises(FileRefused, match="over the"):
        RULES.checked(photo(size=None), PNG + bytes(1000))


def test_refusals_of_several_files_are_reported_together() -> None:
    errors = [FileRefused("a.png", reason="too big"), FileRefused("b.exe", reason="not allowed")]
    assert FileRefused.of(errors).files == ("a.png (too big)", "b.exe (not allowed)")


@pytest.mark.parametrize("url", ["http://files.slack.com/files-pri/T1-F1/download/a.png",  # not over TLS
                                 "https://files.slack.com.evil.example/a.png", "https://evil.example/a.png",
                                 "ftp://files.slack.com/a.png", "file:///etc/passwd"])
def test_credentials_go_to_the_platforms_own_origins_only(url: str) -> None:
    session = requests.Session()
    session.get = None  # type: ignore[assignment] - a request asked at all would fail the test here
    with pytest.raises(FileRefused, match="a host Parley does not fetch from"):
        download(url, session=session, max_bytes=1000, name="a.png", timeout=1, what="Slack",
                 allowed={"https://files.slack.com", origin_of("http://127.0.0.1:8080/api/")},
                 headers={"Authorization": "Bearer xoxb-secret"})
