// GET and HEAD of /v2/<name>/manifests/<tag|digest>, for nginx's njs module. Plain nginx
// can serve the bytes, but not read the digest and media type a manifest is stored with;
// this does just that, without parsing or hashing the manifest when its writer recorded
// both (docs/index-format.md, format version 2). Two front ends share it:
//
//   cargohold.manifestFile        cargohold.conf (js_set $oci_manifest): "<digest> <type>"
//                                 from the manifest's .meta/ sidecar, for nginx to send
//                                 index/<name>/_manifests/<digest> itself; "" when this
//                                 request needs cargohold.manifest
//   cargohold.manifest            cargohold.conf: the filesystem store's directory, read
//                                 with fs: the recorded digest's bytes, or for manifests
//                                 stored without a record, the bytes hashed and the
//                                 media type from the .meta/ sidecar or the body
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
//   Docker-Content-Digest  the digest in the URL; for a tag, the one recorded at push
//                          (the sidecar's `digest`, x-amz-meta-digest), else sha256 of
//                          the bytes
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
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
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

// What the writer recorded in the manifest's sidecar: { digest, mediaType }, or null for
// a sidecar without a record (format version 1) or one that does not fit the URL. The
// bytes to send are those of the recorded digest (index/<name>/_manifests/<digest>,
// never changed once stored, and stored before any tag names it), never the tag file's:
// a writer renames a tag's sidecar before its data, and the pair must never be a new
// digest with the old bytes.
function record(r) {
    const ref = r.variables.oci_ref;
    const raw = readOrNull(r.variables.document_root + '/.meta/index/' + r.variables.oci_name
        + '/_manifests/' + ref + '.json');
    if (raw === null) {
        return null;
    }
    try {
        const meta = JSON.parse(raw.toString());
        const digest = meta.digest;
        const type = meta.content_type;
        const fits = ref.indexOf(':') >= 0 ? digest === ref : digest.startsWith('sha256:');
        if (typeof digest === 'string' && DIGEST.test(digest) && fits
            && typeof type === 'string' && isManifestType(type)) {
            return { digest: digest, mediaType: essence(type) };
        }
    } catch (e) {
        // A torn or foreign sidecar: the caller falls back.
    }
    return null;
}

// Whether If-None-Match names this ETag.
function notModified(r, etag) {
    const ifNoneMatch = r.headersIn['If-None-Match'];
    return !!ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag);
}

// js_set $oci_manifest: "<digest> <media type>" when nginx can send the recorded digest's
// file with a 200 as it is; "" for cargohold.manifest to answer (no record, a 304, an
// Accept that refuses the type). Reads one small file; the manifest is not opened here.
function manifestFile(r) {
    if (staleMirroredTag(r)) {
        return '';
    }
    const rec = record(r);
    if (rec === null || !accepts(acceptedTypes(r), rec.mediaType)
        || notModified(r, '"' + rec.digest + '"')) {
        return '';
    }
    return rec.digest + ' ' + rec.mediaType;
}

// A tag of a mirrored repository ($cargohold_mirror_ttl: its upstream's TTL in seconds)
// whose file is older than the TTL: the API revalidates it upstream (and writes the tag
// again when it is still current, so it is served from here for another TTL).
function staleMirroredTag(r) {
    const ttl = Number(r.variables.cargohold_mirror_ttl);
    const ref = r.variables.oci_ref;
    if (!ttl || ref.indexOf(':') >= 0) {
        return false;
    }
    try {
        const path = r.variables.document_root + '/index/' + r.variables.oci_name
            + '/_manifests/' + ref;
        return Date.now() - fs.statSync(path).mtimeMs > ttl * 1000;
    } catch (e) {
        return true;
    }
}

function manifest(r) {
    const name = r.variables.oci_name;
    const ref = r.variables.oci_ref;
    const root = r.variables.document_root;
    const rec = record(r);
    if (rec !== null) {
        const recorded = readOrNull(root + '/index/' + name + '/_manifests/' + rec.digest);
        if (recorded !== null) {
            respond(r, rec.digest, rec.mediaType, recorded);
            return;
        }
    }
    // Stored without a record: the bytes under the URL's key, hashed.
    const key = 'index/' + name + '/_manifests/' + ref;
    const bytes = readOrNull(root + '/' + key);
    if (bytes === null) {
        fail(r, 404, 'MANIFEST_UNKNOWN', 'manifest ' + ref + ' unknown to ' + name);
        return;
    }
    const sha256hex = crypto.createHash('sha256').update(bytes).digest('hex');
    const mediaType = recordedType(root + '/.meta/' + key + '.json', bytes, sha256hex)
        || bodyType(bytes)
        || MANIFEST_TYPES[0];

    respond(r, ref.indexOf(':') >= 0 ? ref : 'sha256:' + sha256hex, mediaType, bytes);
}

// A found manifest's answer, or 404 if the Accept header refuses its type.
function respond(r, digest, mediaType, bytes) {
    if (!accepts(acceptedTypes(r), mediaType)) {
        unaccepted(r, mediaType);
        return;
    }
    answer(r, digest, mediaType, bytes, null);
}

function unaccepted(r, mediaType) {
    fail(r, 404, 'MANIFEST_UNKNOWN',
        'manifest ' + r.variables.oci_ref + ' unknown to ' + r.variables.oci_name, {
            reason: 'stored as ' + mediaType + ', which the Accept header does not list',
        });
}

// The headers of a found manifest, then 304, the bytes, or (HEAD answered from a HEAD
// of the object: bytes null) the length alone.
function answer(r, digest, mediaType, bytes, length) {
    const etag = '"' + digest + '"';
    r.headersOut['Content-Type'] = mediaType;
    r.headersOut['Docker-Content-Digest'] = digest;
    r.headersOut['ETag'] = etag;
    r.headersOut['Cache-Control'] = r.variables.oci_ref.indexOf(':') >= 0 ? IMMUTABLE : REVALIDATE;
    // Which of the stored manifests is an answer depends on Accept (nginx's cache and CDNs).
    r.headersOut['Vary'] = 'Accept';

    if (notModified(r, etag)) {
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

// The digest the writer recorded as metadata (x-amz-meta-digest; the Worker reads it as
// R2's `digest` custom metadata): with it, a tag's bytes need no hashing.
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

// A mirrored repository's ($cargohold_mirror_ttl: its upstream's tag TTL in seconds) missing
// manifest, or tag whose object is older than the TTL (by the bucket's Last-Modified):
// the API fetches or revalidates it upstream.
function mirrorMiss(r, reply) {
    const ttl = Number(r.variables.cargohold_mirror_ttl);
    if (!ttl) {
        return false;
    }
    if (reply.status === 404 || reply.status === 403) {
        return true;
    }
    const modified = Date.parse(reply.headersOut['Last-Modified'] || '');
    return reply.status === 200 && r.variables.oci_ref.indexOf(':') < 0
        && !(Date.now() - modified <= ttl * 1000);
}

function manifestFromBucket(r) {
    const name = r.variables.oci_name;
    const ref = r.variables.oci_ref;
    const byDigest = ref.indexOf(':') >= 0;
    const unknown = () => fail(r, 404, 'MANIFEST_UNKNOWN', 'manifest ' + ref + ' unknown to ' + name);
    if (r.variables.oci_namespace) {
        r.headersOut['OCI-Namespace'] = r.variables.oci_namespace;
    }
    const get = () => r.subrequest(OBJECT, { method: 'GET' })
        .then((reply) => ({
            reply: reply,
            // An empty body has no buffer at all.
            bytes: reply.headersOut['Content-Length'] === '0' ? Buffer.alloc(0) : reply.responseBuffer,
        }));
    // A HEAD needs no body when the object's metadata has the type and (by tag) the
    // digest: one HEAD of the object. Objects stored without them: one GET.
    const fetched = r.method === 'HEAD'
        ? r.subrequest(OBJECT, { method: 'HEAD' }).then((reply) => (
            reply.status === 200
                && (objectType(reply) === null || (!byDigest && objectDigest(reply) === null))
                ? get()
                : { reply: reply, bytes: null }))
        : get();

    fetched.then((got) => {
        const reply = got.reply;
        if (mirrorMiss(r, reply)) {
            r.internalRedirect('@api');
            return;
        }
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
            unaccepted(r, mediaType);
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

export default { manifest, manifestFile, manifestFromBucket, bucketHeaders };
