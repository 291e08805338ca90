package backup

import (
	"fmt"
	"os/exec"
)

// Tools are the Debian programs backups use.
type Tools struct {
	Backup   string // mariadb-backup (package mariadb-backup)
	Mbstream string // mbstream (package mariadb-backup)
	Mariadbd string // mariadbd (package mariadb-server): the scratch server
	Client   string // mariadb (package mariadb-client)
	Binlog   string // mariadb-binlog (package mariadb-client)
}

// FindTools locates the programs in PATH or where Debian puts them.
func FindTools() (Tools, error) {
	var t Tools
	for _, x := range []struct {
		dst   *string
		names []string
		pkg   string
	}{
		{&t.Backup, []string{"mariadb-backup", "/usr/bin/mariadb-backup"}, "mariadb-backup"},
		{&t.Mbstream, []string{"mbstream", "/usr/bin/mbstream"}, "mariadb-backup"},
		{&t.Mariadbd, []string{"mariadbd", "/usr/sbin/mariadbd"}, "mariadb-server"},
		{&t.Client, []string{"mariadb", "/usr/bin/mariadb"}, "mariadb-client"},
		{&t.Binlog, []string{"mariadb-binlog", "/usr/bin/mariadb-binlog"}, "mariadb-client"},
	} {
		for _, n := range x.names {
			if p, err := exec.LookPath(n); err == nil {
				*x.dst = p
				break
			}
		}
		if *x.dst == "" {
			return t, fmt.Errorf("backup: %s not found (Debian package %s): run scripts/install-deps.sh", x.names[0], x.pkg)
		}
	}
	return t, nil
}
