// GET and HEAD of /v2/<name>/manifests/<tag|digest>, straight from cargohold's filesystem
// store, for nginx's njs module (`js_content cargohold.manifest`). Plain nginx can serve
// the file, but not read its media type from the sidecar nor hash it; this does just that.
//
// nginx matched the URL against the name, tag and digest grammar and captured $oci_name
// and $oci_ref, so the path built here stays inside index/. The answer is the API
// server's (registry-api/src/handlers/manifests.rs):
//
//   Content-Type           the type recorded at push (.meta/<key>.json), else the body's
//                          mediaType, else the OCI image manifest type
//   Docker-Content-Digest  the digest in the URL; for a tag, sha256 of the bytes
//   ETag                   "<digest>"; a matching If-None-Match gives 304
//   Cache-Control          tags revalidate, digests never change (docs/index-format.md)
//   Accept                 if it names manifest types but neither this one nor a wildcard:
//                          404 MANIFEST_UNKNOWN

const fs = require('fs');
const crypto = require('crypto');

const MANIFEST_TYPES = [
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
];
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'public, max-age=0, must-revalidate';

// The media type essence of a Content-Type or Accept entry: no parameters, lowercase.
function essence(t) {
    return t.split(';')[0].trim().toLowerCase();
}

function isManifestType(t) {
    return MANIFEST_TYPES.indexOf(essence(t)) >= 0;
}

function fail(r, status, code, message, detail) {
    const err = { code: code, message: message };
    if (detail) {
        err.detail = detail;
    }
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({ errors: [err] }));
}

// Clients send several Accept lines (containers/image sends one per type): merge them all.
function acceptedTypes(r) {
    return r.rawHeadersIn
        .filter((h) => h[0].toLowerCase() === 'accept')
        .map((h) => h[1])
        .join(',')
        .split(',')
        .map(essence)
        .filter((t) => t !== '');
}

// No Accept, wildcards, or an Accept naming no manifest type at all accept anything.
function accepts(listed, mediaType) {
    if (!listed.some(isManifestType)) {
        return true;
    }
    return listed.some((t) => t === mediaType || t === '*/*' || t === 'application/*');
}

// The file's bytes, or null if it does not exist.
function readOrNull(path) {
    try {
        return fs.readFileSync(path);
    } catch (e) {
        if (e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'ENAMETOOLONG') {
            return null;
        }
        throw e;
    }
}

// The media type recorded at push. The sidecar is only believed if it describes these
// very bytes (a writer may be between renaming the sidecar and the data), so its size
// and ETag (the sha256 hex the filesystem store records) must match.
function recordedType(path, bytes, sha256hex) {
    const raw = readOrNull(path);
    if (raw === null) {
        return null;
    }
    try {
        const meta = JSON.parse(raw.toString());
        const type = meta.content_type;
        if (meta.size === bytes.length && meta.etag === sha256hex && type && isManifestType(type)) {
            return essence(type);
        }
    } catch (e) {
        // A torn or foreign sidecar: fall back to the body.
    }
    return null;
}

function bodyType(bytes) {
    try {
        const type = JSON.parse(bytes.toString()).mediaType;
        if (typeof type === 'string' && isManifestType(type)) {
            return essence(type);
        }
    } catch (e) {
        // Not JSON: served anyway, as the API does, under the default type.
    }
    return null;
}

function manifest(r) {
    const name = r.variables.oci_name;
    const ref = r.variables.oci_ref;
    const key = 'index/' + name + '/_manifests/' + ref;
    const root = r.variables.document_root;

    const bytes = readOrNull(root + '/' + key);
    if (bytes === null) {
        fail(r, 404, 'MANIFEST_UNKNOWN', 'manifest ' + ref + ' unknown to ' + name);
        return;
    }
    const sha256hex = crypto.createHash('sha256').update(bytes).digest('hex');
    const mediaType = recordedType(root + '/.meta/' + key + '.json', bytes, sha256hex)
        || bodyType(bytes)
        || MANIFEST_TYPES[0];

    if (!accepts(acceptedTypes(r), mediaType)) {
        fail(r, 404, 'MANIFEST_UNKNOWN', 'manifest ' + ref + ' unknown to ' + name, {
            reason: 'stored as ' + mediaType + ', which the Accept header does not list',
        });
        return;
    }

    const byDigest = ref.indexOf(':') >= 0;
    const digest = byDigest ? ref : 'sha256:' + sha256hex;
    const etag = '"' + digest + '"';
    r.headersOut['Content-Type'] = mediaType;
    r.headersOut['Docker-Content-Digest'] = digest;
    r.headersOut['ETag'] = etag;
    r.headersOut['Cache-Control'] = byDigest ? IMMUTABLE : REVALIDATE;

    const ifNoneMatch = r.headersIn['If-None-Match'];
    if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag)) {
        r.return(304);
        return;
    }
    // For HEAD, nginx sends the headers (Content-Length included) and drops the body.
    r.return(200, bytes);
}

export default { manifest };
