<?php
// A db.php drop-in for tests: a wpdb that never connects and finds nothing,
// so that WordPress can boot (SHORTINIT) without a database server.
class SP_Fake_Wpdb extends wpdb {
	public $queries_run = array();
	public function __construct() {
		$this->ready  = true;
		$this->dbname = 'fake';
		$this->charset = 'utf8mb4';
	}
	public function db_connect( $allow_bail = true ) {
		return true;
	}
	public function check_connection( $allow_bail = true ) {
		return true;
	}
	public function query( $query ) {
		$this->queries_run[] = $query;
		$this->last_result   = array();
		return 0;
	}
	public function db_version() {
		return '10.11.0';
	}
	public function db_server_info() {
		return '10.11.0-MariaDB';
	}
	public function _real_escape( $s ) {
		return addslashes( (string) $s );
	}
}
$wpdb = new SP_Fake_Wpdb();
