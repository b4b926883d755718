// GET and HEAD of /v2/<name>/manifests/<tag|digest>, for nginx's njs module. Plain nginx
// can serve the bytes, but not read their media type nor hash them; this does just that.
// Two front ends share it:
//
//   cargohold.manifest            cargohold.conf: the filesystem store's directory, read
//                                 with fs, the media type from the .meta/ sidecar
//   cargohold.manifestFromBucket  cargohold-s3.conf: the object fetched from the S3 bucket
//                                 by a subrequest, the media type its Content-Type
//   cargohold.bucketHeaders       cargohold-s3.conf: a header filter that keeps only the
//                                 bucket's entity headers (no x-amz-*, no S3 ETag)
//
// nginx matched the URL against the name, tag and digest grammar and captured $oci_name
// and $oci_ref, so the key built here stays inside index/. The answer is the API
// server's (registry-api/src/handlers/manifests.rs):
//
//   Content-Type           the type recorded at push (.meta/<key>.json, or the object's
//                          Content-Type), else the body's mediaType, else an OCI index if
//                          the body has `manifests`, else the OCI image manifest type
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

// The type a reader without metadata gives a manifest (index_format's sniff_media_type):
// its mediaType field, else an index if it has a `manifests` field, else null (the caller
// then uses the OCI image manifest type).
function bodyType(bytes) {
    try {
        const doc = JSON.parse(bytes.toString());
        const type = doc.mediaType;
        if (typeof type === 'string' && isManifestType(type)) {
            return essence(type);
        }
        if (doc.manifests !== undefined && doc.manifests !== null) {
            return MANIFEST_TYPES[1];
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
    answer(r, byDigest ? ref : 'sha256:' + sha256hex, mediaType, bytes, null);
}

// The headers of a found manifest, then 304, the bytes, or (HEAD answered from a HEAD
// of the object: bytes null) the length alone.
function answer(r, digest, mediaType, bytes, length) {
    const etag = '"' + digest + '"';
    r.headersOut['Content-Type'] = mediaType;
    r.headersOut['Docker-Content-Digest'] = digest;
    r.headersOut['ETag'] = etag;
    r.headersOut['Cache-Control'] = r.variables.oci_ref.indexOf(':') >= 0 ? IMMUTABLE : REVALIDATE;

    const ifNoneMatch = r.headersIn['If-None-Match'];
    if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag)) {
        r.return(304);
        return;
    }
    if (bytes === null) {
        r.status = 200;
        r.headersOut['Content-Length'] = length;
        r.sendHeader();
        r.finish();
        return;
    }
    // For HEAD, nginx sends the headers (Content-Length included) and drops the body.
    r.return(200, bytes);
}

// --- S3 (cargohold-s3.conf) ---------------------------------------------------------------

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

// The subrequest's location (cargohold-s3.conf) proxies to the manifest's object,
// index/$oci_name/_manifests/$oci_ref under the configured prefix, with no header of the
// client's (no Range, no conditions), and does not intercept the bucket's errors.
const OBJECT = '/_cargohold/manifest';

// The object's Content-Type, if it is a manifest type: S3 stores it with the bytes, so it
// always describes them. Objects copied in by other tools (binary/octet-stream) fall back.
function objectType(reply) {
    const type = reply.headersOut['Content-Type'];
    return type && isManifestType(type) ? essence(type) : null;
}

// The digest a writer may have recorded as metadata (x-amz-meta-digest), as the Worker
// reads R2's `digest` custom metadata; cargohold does not write it yet.
function objectDigest(reply) {
    const meta = reply.headersOut['x-amz-meta-digest'];
    return meta && DIGEST.test(meta) ? meta : null;
}

function unavailable(r, reply) {
    r.error('bucket answered ' + reply.status + ' for ' + r.variables.oci_name + '/manifests/'
        + r.variables.oci_ref);
    r.headersOut['Retry-After'] = '10';
    fail(r, 503, 'TOOMANYREQUESTS', 'the storage bucket is not reachable; try again');
}

function manifestFromBucket(r) {
    const name = r.variables.oci_name;
    const ref = r.variables.oci_ref;
    const byDigest = ref.indexOf(':') >= 0;
    const unknown = (detail) => fail(r, 404, 'MANIFEST_UNKNOWN',
        'manifest ' + ref + ' unknown to ' + name, detail);
    const get = () => r.subrequest(OBJECT, { method: 'GET' })
        .then((reply) => ({
            reply: reply,
            // An empty body has no buffer at all.
            bytes: reply.headersOut['Content-Length'] === '0' ? Buffer.alloc(0) : reply.responseBuffer,
        }));
    // A HEAD by digest needs no body when the object's Content-Type is a manifest type:
    // one HEAD of the object. By tag the digest is the body's hash: one GET.
    const fetched = r.method === 'HEAD' && byDigest
        ? r.subrequest(OBJECT, { method: 'HEAD' }).then((reply) => (
            reply.status === 200 && objectType(reply) === null
                ? get()
                : { reply: reply, bytes: null }))
        : get();

    fetched.then((got) => {
        const reply = got.reply;
        // 403: what AWS answers for a missing key to a reader without s3:ListBucket.
        if (reply.status === 404 || reply.status === 403) {
            unknown();
            return;
        }
        if (reply.status !== 200) {
            unavailable(r, reply);
            return;
        }
        let mediaType = objectType(reply);
        let digest = byDigest ? ref : objectDigest(reply);
        const bytes = got.bytes;
        if (bytes !== null) {
            if (bytes === undefined) {
                // njs before 0.5.0, or more than subrequest_output_buffer_size.
                throw new Error('no body in the subrequest\'s reply');
            }
            mediaType = mediaType || bodyType(bytes) || MANIFEST_TYPES[0];
            digest = digest || 'sha256:' + crypto.createHash('sha256').update(bytes).digest('hex');
        }
        if (!accepts(acceptedTypes(r), mediaType)) {
            unknown({ reason: 'stored as ' + mediaType + ', which the Accept header does not list' });
            return;
        }
        answer(r, digest, mediaType, bytes, bytes === null ? reply.headersOut['Content-Length'] : 0);
    }).catch((e) => {
        r.error('manifest ' + name + ':' + ref + ': ' + e);
        r.headersOut['Retry-After'] = '10';
        fail(r, 503, 'TOOMANYREQUESTS', 'the storage bucket is not reachable; try again');
    });
}

// Header filter for answers proxied from the bucket: only the entity headers pass
// (Content-Length, Content-Range, Accept-Ranges, Last-Modified, and for the lists the
// bucket's ETag); x-amz-*, x-localstack, cf-*, and the like are dropped. The location's
// add_header lines (Content-Type, ETag, Cache-Control, ...) are added after this runs.
const KEEP = ['content-length', 'content-range', 'accept-ranges', 'last-modified', 'etag'];

function bucketHeaders(r) {
    // Errors the bucket's error pages do not map (416) keep their own Content-Type.
    const keep = r.status < 400 ? KEEP : KEEP.concat(['content-type']);
    Object.keys(r.headersOut).forEach((h) => {
        if (keep.indexOf(h.toLowerCase()) < 0) {
            delete r.headersOut[h];
        }
    });
}

export default { manifest, manifestFromBucket, bucketHeaders };
