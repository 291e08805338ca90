// Package filesync keeps the docroots of the PHP nodes identical: the
// `files` role holds the canonical site tree (Server, Store) and every node
// runs an Agent that applies the tree's changes and pushes its own.
//
// # The files role
//
// The tree is stored as content-addressed blobs (SHA-256, lowercase hex) and
// an ordered change log. A Change (put, delete, mkdir) gets a sequence
// number when it is committed; the log is the one history every node
// applies, in order. A rename is a delete of the old path and a put (or
// mkdir) of the new one, pushed in one batch and committed together: the
// watcher of a node sees a rename as two paths changing and cannot tell it
// from a copy plus a delete, and delete+put keeps the log a list of states
// rather than moves. Semantics, the same on the server's manifest and on
// every docroot: a put or mkdir creates missing parents (mode 0755) and
// replaces whatever is in its way (a file where a parent directory must be,
// a directory where the file goes); a delete removes a whole subtree.
//
// Storage goes through two interfaces so that an object-storage backend can
// replace the local directory: BlobStore (Put/Get/Has/List of blobs; one
// immutable object per blob) and ObjectStore (log segments and snapshots).
// The local layout under Config.Dir:
//
//	LOCK                          flock(2): one server per directory
//	blobs/ab/abcdef…              a blob, written with atomicfile (temp beside it, fsync, rename)
//	log/00000000000000000001.log  a log segment, named by its first seq
//	snap/00000000000000010000.json a snapshot: the Manifest at that seq
//
// A log segment is a run of records, each
//
//	uint32 BE  payload length
//	uint32 BE  CRC-32C (Castagnoli) of the payload
//	payload    version 1, op, uvarint seq, uvarint mode, uvarint size,
//	           varint mtime (Unix ns), hash length (0|32) + raw SHA-256,
//	           uvarint path length + path, uvarint origin length + origin
//
// and only canonical payloads decode, so records round-trip byte for byte.
// Sequence numbers are consecutive. A commit is appended (and fsynced) only
// after every blob it names is durably stored and checked against the
// announced size; a push is committed all or nothing. On open, the store
// loads the newest snapshot and replays the log after it; a record cut
// short or corrupt at the end of the last segment is a torn write and is
// cut off, never applied; damage anywhere else fails the open. A snapshot
// is written every Config.SnapshotEvery records (the last KeepSnapshots are
// kept) to bound the replay and to serve GET /v1/manifest?at=N.
//
// # Who may call (docs/adr/0009-trust-model.md)
//
// Every request must name the server in its Host header (its configured
// address, or a loopback name with its port when it listens on loopback;
// 403 otherwise, so a page that rebinds its DNS name to the server gets
// nowhere), and every request but GET /healthz carries a bearer token
// issued with the files key, Config.Key (401 otherwise). The token names
// the caller: "controller" (seeding, status) and "node-N" (each node's
// agent) may write; anyone else — the edges, which read uploads — only
// reads (403 on a write). A push's origin must be the caller (403), so a
// node can neither forge another's changes nor break its echo
// suppression. POST /v1/changes takes application/json and PUT
// /v1/blobs/{hash} application/octet-stream (415 otherwise): no cross-site
// form can send either. Every refusal is one line naming what was wrong,
// logged once with the client's address; nothing is written.
//
// # Pushes and validation
//
// A node uploads each new blob with PUT /v1/blobs/{hash} (the server hashes
// the body and refuses a mismatch or a blob over Rules.MaxFileSize, keeping
// nothing), then commits metadata with POST /v1/changes (PushRequest). Every
// path must be relative and clean — no leading '/', no '.' or '..' or empty
// segments, no NUL, control character or backslash, valid UTF-8, at most
// Rules.MaxDepth segments — must fit a filesystem — no name over
// MaxSegmentLen (255) bytes, at most MaxSyncPathLen (4095) bytes — and must
// not match Rules.Exclude; modes are permission bits only, so symlinks (and
// setuid bits) are refused; a file may not exceed Rules.MaxFileSize nor a
// push Config.MaxRequestSize. A refusal is a RejectError naming the path
// and the rule (HTTP 400, or 413 for sizes). A change that matches the
// current state (same content and mode, delete of a missing path) is a
// no-op: it gets no record, so echoes and retries cost nothing. The log
// decoder accepts paths up to MaxPathLen (4096) bytes, so that a store
// written before the filesystem rule still opens; the agents quarantine
// what they cannot write (below).
//
// # Quota and garbage collection
//
// The stored blobs may take at most Config.QuotaBytes (files.quota_mb); an
// upload that would go over it is refused before anything is written, with
// 507 Insufficient Storage rather than 413: the request is fine, the store
// is full, and a 5xx makes the agent keep the change queued and retry
// instead of dropping it. A blob already stored needs no room.
//
// Every Config.GCInterval, Store.GC removes the blobs no file of the
// current tree references (old contents of replaced and deleted files),
// but never one younger than Config.GCGrace, one a writer was told within
// GCGrace is stored (PUT of a stored blob, HEAD by a writer: the agent then
// commits without uploading), or one a commit in progress names (pinned
// from before its blob check until its records are in the tree). The
// collector marks its victims under the store's lock: a commit naming a
// marked blob is refused with RuleBlob (the agent uploads it again), an
// upload of one answers 503 until it is gone. A node replaying old changes
// whose blobs were collected skips a put a later change superseded (asked
// with GET /v1/seq).
//
// # Deadlines
//
// Headers must arrive within Config.ReadHeaderTimeout, idle keep-alive
// connections close after Config.IdleTimeout, and a request body or a blob
// download of n bytes gets ReadHeaderTimeout + n/Config.MinBodyRate; the
// change stream has none (it keeps its own write deadline per heartbeat).
//
// Exclude patterns: a pattern with a '/' (other than a trailing one) is
// anchored at the docroot and matches a path or any leading directory of it
// ("wp-content/cache/"); one without matches any single segment at any depth
// ("*.tmp", ".git", "wp-config.php"). Whatever is below an excluded
// directory is excluded too. Names starting with ".filesync-" are the
// agent's temporary files and are never synced.
//
// # Change stream
//
// GET /v1/stream?since=N answers with JSON lines (application/x-ndjson),
// one Change per line, starting after N and pushed as commits happen; an
// empty line is a heartbeat every Config.Heartbeat. The Filesync-Seq header
// carries the log's last sequence number at connect time. A since past the
// end of the log is a 409 (the node must bootstrap again). The client
// reconnects with since = the last sequence number it applied.
//
// # The agent
//
// Bootstrap makes a docroot identical to the current manifest (hash-checked
// downloads renamed into place, extras removed, ignored paths left alone)
// and records the sequence number. Run then:
//
//   - applies the stream in order: a put goes to a temporary file in the
//     same directory (".filesync-….tmp"), gets its mode and mtime, and is
//     renamed over the path; every docroot access goes through os.Root, and
//     a symlink in the way of a path is replaced, never followed.
//     AppliedSeq says how far it got; it is saved after every burst.
//     Docroot writes are not fsynced: the docroot is a copy, and after a
//     machine crash Bootstrap (which checks every file's hash) restores it.
//   - watches the docroot with fsnotify, one watch per directory (new
//     directories get one, and what they already hold is reported; a moved
//     or removed directory loses its subtree's watches). A path is read
//     once it has been quiet for Debounce (20 ms), and paths that have been
//     quiet for three quarters of that go along, so a burst is one push.
//     Lost events (fsnotify.ErrEventOverflow) or a watcher error trigger a
//     full rescan of the docroot against the index (the manifest at
//     AppliedSeq plus the local changes queued since).
//   - never echoes its own writes: the index holds the hash, size, mode and
//     mtime of every file it wrote, and a file whose size, mtime and mode
//     match is not read again; one whose content hashes to the index entry
//     is not pushed.
//   - pushes local changes through a queue persisted in StateDir
//     (queue.jsonl, fsynced on add), so that nothing is lost while files is
//     unreachable or across an agent restart; it retries with backoff and
//     drops only what the server refuses (logged) or what changed again
//     since (the newer state is queued behind it).
//   - quarantines a change of the log that keeps failing on this node for
//     a reason of its own (a name the filesystem cannot hold, something in
//     the way it may not replace): after AgentConfig.QuarantineAfter
//     attempts spaced by the reconnect backoff, the change is recorded in
//     StateDir/quarantine.jsonl (which the node agent reports as
//     files_quarantined), logged and skipped, so that the log moves on;
//     its path is not pushed from this node until a later change to it
//     applies. Failures of the network or of the whole disk (full,
//     read-only, I/O errors) never count. Bootstrap does the same per
//     path, so that a new node comes up.
//
// Conflicts: the last change by sequence number wins, on every node, since
// every node applies the whole log in order, its own changes included
// (reconciled by hash, so identical content is not rewritten). Two nodes
// writing one path each push; the later commit wins everywhere. While a
// node has a local change to a path queued or in flight, it skips earlier
// remote changes to that path instead of writing them and then its own
// again; and before applying a remote change it checks the path on disk
// against its index, so a local write the watcher has not reported yet is
// queued (and wins) instead of being overwritten unseen.
//
// After a restart the agent fetches the manifest at its AppliedSeq,
// catches up with the stream, and only then rescans the docroot, so that
// files a crash left ahead of AppliedSeq are reconciled by the replay rather
// than pushed back; local writes made while the agent was stopped are found
// by that rescan (a write to a path that a replayed change also touches is
// overwritten by the replay).
//
// # Read your writes
//
// GET /v1/seq?path=P (Client.PathSeq) tells the edge which AppliedSeq a node
// must have reached to serve P as it is now (for a removed path, the change
// that removed it when the server still remembers it, else the snapshot it
// started from). Server.ServeFile (and GET /v1/files/{path}) serves the
// current content of a path straight from the store, with ETag = the hash,
// Last-Modified = its mtime, and Range support.
package filesync
