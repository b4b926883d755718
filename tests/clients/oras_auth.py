"""oras (Python SDK) against a registry with auth_setup's rules (tests/clients/lib.sh):
public/* anyone pulls, private/* alice and bob pull, alice pushes.

Usage: oras_auth.py HOST:PORT WORKDIR
Prints `ok - NAME` / `not ok - NAME` per check; exits 1 if any failed.
"""

import os
import sys

import oras.auth.utils
import oras.provider

from oras_lib import check, expect, finish, sha256

HOST, WORK = sys.argv[1], sys.argv[2]
PAYLOAD_TYPE = "application/vnd.cargohold.test.payload.v1"


def registry(user=None, push_to=None):
    """A new SDK client; with a user, its token requests carry Basic credentials (no docker
    config written, unlike `login`). The SDK keeps a single token per client, asks for a
    new one only on a 403, and registries (distribution, Docker Hub, cargohold) answer a
    token short of a scope with 401 `insufficient_scope`: a push to a repository that
    needs a token for its first HEAD would keep the pull-only one. So a pushing client
    gets its token for `push_to` first, by the SDK's own token request."""
    r = oras.provider.Registry(hostname=HOST, insecure=True)
    if user:
        r.auth.set_basic_auth(user, f"pw-{user}")
    if push_to:
        challenge = f'Bearer realm="http://{HOST}/token",service="cargohold",scope="repository:{push_to}:pull,push"'
        r.auth.token = r.auth.request_token(oras.auth.utils.parse_auth_header(challenge))
    return r


def pulled(client, ref, outdir):
    files = client.pull(target=f"{HOST}/{ref}", outdir=os.path.join(WORK, outdir))
    expect("files", 1, len(files))
    with open(files[0], "rb") as f:
        return sha256(f.read())


def refused(what, fn):
    """fn must fail: an exception, or an answer that is not a success."""
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - the SDK raises several kinds
        print(f"# {what}: refused ({type(e).__name__}: {str(e)[:120]})")
        return
    status = getattr(r, "status_code", None)
    if status is None or status < 400:
        raise AssertionError(f"{what} succeeded: {r!r}")


os.chdir(WORK)  # the SDK only uploads files below the working directory
PAYLOAD = b"cargohold oras auth payload\n" + os.urandom(4096)
with open("payload.bin", "wb") as f:
    f.write(PAYLOAD)
FILES = [f"payload.bin:{PAYLOAD_TYPE}"]


@check("oras, auth: alice pushes to public/oras and private/oras")
def _():
    for repo in ("public/oras", "private/oras"):
        r = registry("alice", push_to=repo).push(target=f"{HOST}/{repo}:v1", files=FILES, quiet=True)
        expect(f"PUT manifest status ({repo})", 201, r.status_code)


@check("oras, auth: an anonymous push is refused")
def _():
    refused("anonymous push", lambda: registry().push(target=f"{HOST}/public/anon:v1", files=FILES, quiet=True))


@check("oras, auth: anonymous pull of public/oras")
def _():
    expect("payload", sha256(PAYLOAD), pulled(registry(), "public/oras:v1", "anon-public"))


@check("oras, auth: private/oras denied anonymously")
def _():
    refused("anonymous pull", lambda: registry().get_manifest(f"{HOST}/private/oras:v1"))


@check("oras, auth: private/oras pulled with bob's credentials")
def _():
    expect("payload", sha256(PAYLOAD), pulled(registry("bob"), "private/oras:v1", "bob-private"))


@check("oras, auth: bob's push (pull rights only) is refused")
def _():
    refused("bob's push", lambda: registry("bob", push_to="private/oras-bob").push(target=f"{HOST}/private/oras-bob:v1", files=FILES, quiet=True))


finish("oras auth")
