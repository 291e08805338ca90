// Package backup makes and restores backups of an environment: the
// database (a mariadb-backup stream from one member), the files store's
// tree at one sequence number (its blobs kept once per target, shared by
// every backup, so a backup after the first copies only new content), the
// secrets a restored site needs, and a manifest written last.
//
// A target (a directory; object storage beside it) holds
//
//	blobs/ab/abcdef…        the files store's blobs, by SHA-256 (shared)
//	binlog/<member>/…       binary logs archived continuously (point in time)
//	<ID>/db.xbstream        the database, as mariadb-backup streamed it
//	<ID>/files.json         the files tree (the files store's manifest)
//	<ID>/secrets.json       the secrets the database needs (mode 0600)
//	<ID>/scalepress.yaml    the configuration, when the environment had one
//	<ID>/manifest.json      written last, atomically: a backup without it
//	                        is an unfinished one and is never listed
//
// The manifest names every artefact with its size and SHA-256, the Galera
// position and binary log GTID the database copy is consistent at, the
// files sequence number, and the row count of every table of the site's
// database as a scratch server saw the prepared copy; verify restores into
// a scratch directory and checks all of it again.
package backup
