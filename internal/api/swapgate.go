package api

// The request gate between a node's filesync agent and PHP (ADR 26): the
// agent swaps a unit's tree (a plugin, a theme, a core tree) while no PHP
// request of the node runs, so that no request reads part of the old tree
// and part of the new one. PHP's side is the php-fpm auto_prepend_file
// (internal/phpfpm), run before any script of every request: it passes the
// gate (a shared flock on GateFile, released at once) and then holds a
// shared flock on InUseFile until the request ends. The agent takes the
// gate exclusively (new requests wait), then InUseFile exclusively (the
// requests in flight finish), swaps, and releases both.
const (
	// SwapStageDir is the agent's staging directory in the docroot; the
	// lock files are in it. Its name starts with the agent's temporary
	// prefix, so it is never synced, and it is a dotfile, so never served.
	SwapStageDir = ".filesync-stage"
	// SwapGateFile and SwapInUseFile are the lock files in SwapStageDir.
	SwapGateFile  = "gate"
	SwapInUseFile = "inuse"
)

// Units that PHP declares (ADR 26): while WordPress's upgrader replaces a
// plugin's or theme's directory, the mu-plugin keeps a marker file in
// SwapStageDir/SwapUnitsDir (group-writable: PHP's group is the agent's).
// Its name says the unit: "plugins.NAME" for wp-content/plugins/NAME,
// "themes.NAME" for wp-content/themes/NAME. While the marker exists the
// agent pushes nothing of the unit; when it is removed the agent pushes the
// unit's whole tree as one unit (filesync.PushRequest.Unit).
const SwapUnitsDir = "units"
