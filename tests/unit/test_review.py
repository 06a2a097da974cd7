"""The review page: what each look shows, and that nothing from a record can
inject markup or make the page load from where it should not."""

from html.parser import HTMLParser

from tryon.review import render_review, safe_link, timings

BUCKET = "s3://inbox"


def job(look_id="look-1", status="SUCCEEDED", **fields):
    record = {
        "job_id": f"job-{look_id}",
        "look_id": look_id,
        "status": status,
        "model": "qwen-image-3.0",
        "requested_model": "qwen-image-3.0",
        "inputs": {"person": f"{BUCKET}/people/ann.jpg", "top": f"{BUCKET}/garments/shirt.jpg"},
        "result": ({"uri": f"s3://results/looks/{look_id}.png", "bytes": 10}
                   if status == "SUCCEEDED" else None),
        "timeline": {"received": 100.0, "submitted": 102.5, "provider_start": 103.0,
                     "provider_end": 121.0, "finalized": 122.0},
    }
    return {**record, **fields}


def presigned(uri: str) -> str:
    return "https://bucket.s3.amazonaws.com/" + uri.removeprefix("s3://") + "?X-Amz-Signature=x"


class Page(HTMLParser):
    """The parts of the page the tests look at: images, placeholders, errors, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.placeholders: list[str] = []
        self.errors: list[str] = []
        self.metas: list[dict] = []
        self.tags: list[str] = []
        self._in: list[str] = []
        self.text = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        classes = (attributes.get("class") or "").split()
        if tag == "img":
            self.images.append(attributes)
        if tag == "meta":
            self.metas.append(attributes)
        if "placeholder" in classes:
            self.placeholders.append(attributes.get("aria-label", ""))
        if "error" in classes:
            self._in.append("error")
            self.errors.append("")

    def handle_endtag(self, tag):
        if tag == "div" and self._in:
            self._in.pop()

    def handle_data(self, data):
        self.text += data
        if self._in:
            self.errors[-1] += data


def test_each_look_shows_its_inputs_beside_its_result_with_model_status_and_timings():
    page = Page(render_review("Spring batch", [job("a"), job("b")], presigned))
    assert [image["alt"] for image in page.images] == [
        "person: ann.jpg", "top: shirt.jpg", "result: a.png",
        "person: ann.jpg", "top: shirt.jpg", "result: b.png"]
    assert page.images[2]["src"] == presigned("s3://results/looks/a.png")
    assert "2 looks: 2 succeeded" in page.text
    assert "qwen-image-3.0" in page.text
    assert "queued 2.5 s · provider 18.0 s · total 22.0 s" in page.text
    assert not page.errors and not page.placeholders


def test_a_dress_is_labelled_as_a_dress():
    dress = job(inputs={"person": f"{BUCKET}/p.jpg", "top": f"{BUCKET}/d.jpg"}, top_is_dress=True)
    page = Page(render_review("t", [dress], presigned))
    assert [image["alt"] for image in page.images][:2] == ["person: p.jpg", "dress: d.jpg"]


def test_a_failed_look_shows_its_error_code_and_message():
    failed = job("broken", "FAILED", error={"code": "NotAnImage",
                                             "message": "garments/shirt.jpg: not an image"})
    page = Page(render_review("t", [job("fine"), failed], presigned))
    assert page.errors == ["NotAnImage: garments/shirt.jpg: not an image"]
    assert "2 looks: 1 succeeded, 1 failed" in page.text
    assert page.placeholders == ["result: no result"]


def test_a_timed_out_or_canceled_look_without_an_error_still_says_so():
    page = Page(render_review("t", [job("late", "TIMED_OUT"), job("stopped", "CANCELED")],
                              presigned))
    assert page.errors == ["TIMED_OUT: no error was recorded",
                           "CANCELED: no error was recorded"]


def test_a_fallback_shows_the_requested_and_the_actual_model():
    moved = job(requested_model="aitryon", model="qwen-image-3.0")
    assert "aitryon → qwen-image-3.0 (fallback)" in Page(render_review("t", [moved],
                                                                         presigned)).text


def test_a_missing_result_or_link_is_a_placeholder_not_a_broken_image():
    running = job("running", "SUBMITTED")
    unlinked = job("private")
    page = Page(render_review("t", [running, unlinked],
                              lambda uri: None if "private" in uri or "ann" in uri
                              else presigned(uri)))
    assert all(image.get("src") for image in page.images)
    assert page.placeholders == ["person: no preview", "result: no result yet",
                                 "person: no preview", "result: no preview"]


def test_text_from_records_is_escaped():
    hostile = job("<script>alert(1)</script>", "FAILED",
                  error={"code": "<b>x</b>", "message": '"><img src=x onerror=alert(1)>'},
                  attributes={"<i>": "</dd><script>"},
                  inputs={"person": f'{BUCKET}/"><script>.jpg'})
    text = render_review("<title>", [hostile], presigned)
    page = Page(text)
    assert "script" not in page.tags and "b" not in page.tags and "i" not in page.tags
    assert [tag for tag in page.tags if tag == "img"] == ["img"]  # the person only
    assert "<script>alert(1)</script>" in page.text  # shown as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert page.errors == ['<b>x</b>: "><img src=x onerror=alert(1)>']


def test_a_status_cannot_break_out_of_its_class():
    text = render_review("t", [job(status='x" onmouseover="alert(1)')], presigned)
    assert 'class="look status-xonmouseoveralert"' in text
    assert 'onmouseover="alert' not in text


def test_unsafe_links_are_refused():
    for url in ["javascript:alert(1)", "JavaScript:alert(1)", "java\tscript:alert(1)",
                "data:image/png;base64,AAAA", "file:///etc/passwd", "http://evil.example/x.png",
                "//evil.example/x.png", "/\\evil.example/x.png", "\\\\evil.example\\x.png",
                "/absolute/x.png", "vbscript:x", " https://ok.example/x", "https://", ""]:
        assert safe_link(url) is None, url
        page = Page(render_review("t", [job()], lambda uri, url=url: url))
        assert page.images == [], url
    for url in ["https://bucket.s3.amazonaws.com/k.jpg?X-Amz-Signature=abc&x=1",
                "http://127.0.0.1:4566/inbox/k.jpg", "http://localhost:9000/k.jpg",
                "inputs/ab12-person.jpg", "look-1.png"]:
        assert safe_link(url) == url


def test_a_link_with_quotes_stays_inside_its_attribute():
    page = Page(render_review("t", [job()], lambda uri: 'https://x.example/a.jpg?q="><b>'))
    assert page.images[0]["src"] == 'https://x.example/a.jpg?q="><b>'
    assert "b" not in page.tags


def test_the_page_leaks_no_referrer_and_loads_nothing_but_images_and_its_style():
    page = Page(render_review("t", [job()], presigned))
    metas = {meta.get("name") or meta.get("http-equiv"): meta.get("content")
             for meta in page.metas}
    assert metas["referrer"] == "no-referrer"
    policy = metas["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "img-src https: http://127.0.0.1:* http://localhost:* 'self'" in policy
    assert "style-src 'unsafe-inline'" in policy and "script" not in policy
    assert "script" not in page.tags and "link" not in page.tags


def test_a_batch_orders_its_looks_and_names_its_source():
    batch = {"batch_id": "b1", "job_ids": ["job-second", "job-first"],
             "source": {"bucket": "inbox", "key": "jobs/spring.json"},
             "attributes": {"campaign": "spring"}}
    page = Page(render_review("t", [job("first"), job("second")], presigned, batch=batch))
    assert [image["alt"] for image in page.images if image["alt"].startswith("result")] == [
        "result: second.png", "result: first.png"]
    assert "batch b1 · from s3://inbox/jobs/spring.json · campaign=spring" in page.text


def test_timings_survive_missing_or_odd_timeline_entries():
    assert timings(None) == {"queued": None, "provider": None, "total": None}
    assert timings({"received": "100", "finalized": 130, "submitted": "x",
                    "provider_start": 20, "provider_end": 10}) == {
        "queued": None, "provider": None, "total": 30.0}
    page = Page(render_review("t", [job(timeline={"received": 1}), job(timeline="?")],
                              presigned))
    assert page.text.count("queued - · provider - · total -") == 2


def test_no_looks_is_still_a_page():
    page = Page(render_review("empty", [], presigned))
    assert "0 looks" in page.text and "No looks." in page.text
