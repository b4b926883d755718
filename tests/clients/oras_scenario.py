"""oras (Python SDK) against a running registry: artifacts, subject, referrers.

Usage: oras_scenario.py HOST:PORT WORKDIR
Prints `ok - NAME` / `not ok - NAME` per check; exits 1 if any failed.
Run with .ci/.venv/bin/python (the oras package is installed there).
"""

import json
import os
import sys

import oras.oci
import oras.provider

from oras_lib import check, expect, finish, sha256

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
PAYLOAD_TYPE = "application/vnd.cargohold.test.payload.v1"
SIG_CONFIG_TYPE = "application/vnd.cargohold.test.signature.config.v1+json"
SIG_LAYER_TYPE = "application/vnd.cargohold.test.signature.v1"
SBOM_ARTIFACT_TYPE = "application/vnd.cargohold.test.sbom.v1"
SBOM_LAYER_TYPE = "application/spdx+json"
LATE_ARTIFACT_TYPE = "application/vnd.cargohold.test.early.v1"

HOST, WORK = sys.argv[1], sys.argv[2]
REPO = "test/artifact"
BASE = f"http://{HOST}/v2/{REPO}"

state = {}


client = oras.provider.Registry(hostname=HOST, insecure=True)


def req(method, url, **kw):
    """Raw request through the SDK's own session (same auth/retry path)."""
    return client.do_request(url, method, **kw)


def get_manifest_bytes(ref):
    r = req("GET", f"{BASE}/manifests/{ref}", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
    expect(f"GET manifest {ref} status", 200, r.status_code)
    return r.content


def referrers(digest, artifact_type=None):
    url = f"{BASE}/referrers/{digest}"
    if artifact_type:
        url += f"?artifactType={artifact_type}"
    return req("GET", url)


def referrer_index(r):
    expect("referrers status", 200, r.status_code)
    ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
    expect("referrers Content-Type", OCI_INDEX, ctype)
    body = r.json()
    expect("index schemaVersion", 2, body.get("schemaVersion"))
    expect("index mediaType", OCI_INDEX, body.get("mediaType"))
    return {m["digest"]: m for m in body.get("manifests", [])}


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)


os.chdir(WORK)  # the SDK only uploads files below the working directory
PAYLOAD = b"cargohold artifact payload\n" + os.urandom(4096)
write("payload.bin", PAYLOAD)
SIGNATURE = b"not really a signature\n"
write("signature.txt", SIGNATURE)
SIG_CONFIG = b'{"kind":"signature"}'
write("sig-config.json", SIG_CONFIG)
SBOM = json.dumps({"spdxVersion": "SPDX-2.3", "name": "cargohold-test"}).encode()
write("sbom.json", SBOM)


@check("oras push artifact test/artifact:v1")
def _():
    r = client.push(target=f"{HOST}/{REPO}:v1", files=[f"payload.bin:{PAYLOAD_TYPE}"], quiet=True)
    expect("PUT manifest status", 201, r.status_code)
    body = get_manifest_bytes("v1")
    state["a_digest"] = sha256(body)
    state["a_size"] = len(body)
    dcd = r.headers.get("Docker-Content-Digest")
    if dcd is not None:
        expect("Docker-Content-Digest of PUT", state["a_digest"], dcd)


@check("oras get_manifest: layer is the payload")
def _():
    m = client.get_manifest(f"{HOST}/{REPO}:v1")
    expect("layers", 1, len(m["layers"]))
    expect("layer digest", sha256(PAYLOAD), m["layers"][0]["digest"])
    expect("layer mediaType", PAYLOAD_TYPE, m["layers"][0]["mediaType"])


@check("oras pull artifact: bytes match")
def _():
    files = client.pull(target=f"{HOST}/{REPO}:v1", outdir=os.path.join(WORK, "pulled-a"))
    expect("files", 1, len(files))
    with open(files[0], "rb") as f:
        expect("payload sha256", sha256(PAYLOAD), sha256(f.read()))


@check("oras push with subject (SDK)")
def _():
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=state["a_digest"], size=state["a_size"])
    r = client.push(
        target=f"{HOST}/{REPO}:sig",
        files=[f"signature.txt:{SIG_LAYER_TYPE}"],
        manifest_config=f"sig-config.json:{SIG_CONFIG_TYPE}",
        subject=subject,
        quiet=True,
    )
    expect("PUT manifest status", 201, r.status_code)
    body = get_manifest_bytes("sig")
    state["b1_digest"] = sha256(body)
    state["b1_size"] = len(body)
    state["b1_oci_subject"] = r.headers.get("OCI-Subject")
    expect("subject in stored manifest", state["a_digest"], json.loads(body)["subject"]["digest"])


# Distribution spec 1.1: a registry that processed `subject` MUST say so,
# or clients fall back to maintaining a referrers tag themselves.
@check("OCI-Subject header on PUT of manifest with subject")
def _():
    expect("OCI-Subject (SDK push)", state["a_digest"], state["b1_oci_subject"])


@check("push manifest with artifactType + subject by digest (SDK session, raw PUT)")
def _():
    layer = oras.oci.NewLayer("sbom.json", media_type=SBOM_LAYER_TYPE)
    r = client.upload_blob("sbom.json", client.get_container(f"{HOST}/{REPO}"), layer)
    if r.status_code not in (200, 201, 202):
        raise AssertionError(f"blob upload status {r.status_code}")
    write("empty.json", b"{}")
    empty = {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}
    r = client.upload_blob("empty.json", client.get_container(f"{HOST}/{REPO}"), dict(empty))
    if r.status_code not in (200, 201, 202):
        raise AssertionError(f"empty config upload status {r.status_code}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM_ARTIFACT_TYPE,
        "config": empty,
        "layers": [{"mediaType": SBOM_LAYER_TYPE, "digest": layer["digest"], "size": layer["size"]}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": state["a_digest"], "size": state["a_size"]},
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z", "com.example.kind": "sbom"},
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    digest = sha256(body)
    r = req("PUT", f"{BASE}/manifests/{digest}", data=body, headers={"Content-Type": OCI_MANIFEST})
    expect("PUT status", 201, r.status_code)
    state.update(b2_digest=digest, b2_size=len(body), b2_annotations=manifest["annotations"])
    state["b2_oci_subject"] = r.headers.get("OCI-Subject")
    expect("stored bytes", digest, sha256(get_manifest_bytes(digest)))
    expect("Location", f"/v2/{REPO}/manifests/{digest}", r.headers.get("Location", "").split(HOST)[-1])


@check("OCI-Subject header on PUT by digest")
def _():
    expect("OCI-Subject (raw PUT)", state["a_digest"], state["b2_oci_subject"])


@check("GET referrers lists both referrers")
def _():
    got = referrer_index(referrers(state["a_digest"]))
    expect("referrer digests", sorted([state["b1_digest"], state["b2_digest"]]), sorted(got))
    b1, b2 = got[state["b1_digest"]], got[state["b2_digest"]]
    expect("b1 mediaType", OCI_MANIFEST, b1.get("mediaType"))
    expect("b1 size", state["b1_size"], b1.get("size"))
    # No artifactType in the manifest: the config's mediaType stands in.
    expect("b1 artifactType", SIG_CONFIG_TYPE, b1.get("artifactType"))
    expect("b2 size", state["b2_size"], b2.get("size"))
    expect("b2 artifactType", SBOM_ARTIFACT_TYPE, b2.get("artifactType"))
    expect("b2 annotations", state["b2_annotations"], b2.get("annotations"))


@check("GET referrers?artifactType= filters, OCI-Filters-Applied")
def _():
    r = referrers(state["a_digest"], SBOM_ARTIFACT_TYPE)
    got = referrer_index(r)
    expect("filtered digests", [state["b2_digest"]], list(got))
    expect("OCI-Filters-Applied", "artifactType", r.headers.get("OCI-Filters-Applied"))
    r = referrers(state["a_digest"], "application/vnd.cargohold.none")
    expect("no match", [], list(referrer_index(r)))
    expect("OCI-Filters-Applied (no match)", "artifactType", r.headers.get("OCI-Filters-Applied"))


@check("GET referrers without filter has no OCI-Filters-Applied")
def _():
    r = referrers(state["a_digest"])
    expect("OCI-Filters-Applied", None, r.headers.get("OCI-Filters-Applied"))


@check("GET referrers of a manifest with none: 200, empty index")
def _():
    expect("manifests", [], list(referrer_index(referrers(state["b2_digest"]))))


@check("GET referrers of unknown digest: 200, empty index")
def _():
    expect("manifests", [], list(referrer_index(referrers(sha256(b"never pushed")))))


@check("GET referrers with malformed digest: 400")
def _():
    expect("status", 400, referrers("sha256:not-a-digest").status_code)


@check("oras pull referrer by digest: bytes match")
def _():
    files = client.pull(
        target=f"{HOST}/{REPO}@{state['b2_digest']}", outdir=os.path.join(WORK, "pulled-b2")
    )
    expect("files", 1, len(files))
    with open(files[0], "rb") as f:
        expect("sbom sha256", sha256(SBOM), sha256(f.read()))


@check("referrer pushed before its subject is listed")
def _():
    subject_body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}],
        },
        separators=(",", ":"),
    ).encode()
    subject = {"mediaType": OCI_MANIFEST, "digest": sha256(subject_body), "size": len(subject_body)}
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": LATE_ARTIFACT_TYPE,
            "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}],
            "subject": subject,
        },
        separators=(",", ":"),
    ).encode()
    r = req("PUT", f"{BASE}/manifests/{sha256(body)}", data=body, headers={"Content-Type": OCI_MANIFEST})
    expect("PUT referrer status", 201, r.status_code)
    expect("listed", [sha256(body)], list(referrer_index(referrers(subject["digest"]))))
    r = req("PUT", f"{BASE}/manifests/later", data=subject_body, headers={"Content-Type": OCI_MANIFEST})
    expect("PUT subject status", 201, r.status_code)
    expect("still listed", [sha256(body)], list(referrer_index(referrers(subject["digest"]))))


@check("DELETE referrer manifest removes it from referrers")
def _():
    r = req("DELETE", f"{BASE}/manifests/{state['b2_digest']}")
    expect("DELETE status", 202, r.status_code)
    expect("GET deleted", 404, req("GET", f"{BASE}/manifests/{state['b2_digest']}",
                                   headers={"Accept": OCI_MANIFEST}).status_code)
    expect("remaining", [state["b1_digest"]], list(referrer_index(referrers(state["a_digest"]))))


finish("oras")
