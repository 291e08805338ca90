package galera

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

var identRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

// Grant is the application database and its users.
type Grant struct {
	Database        string
	User, Password  string
	MonitorUser     string
	MonitorPassword string
}

// Validate refuses what cannot go into the statements verbatim: names
// that are not plain identifiers, empty passwords or ones with a quote or
// backslash.
func (g Grant) Validate() error {
	for _, id := range []string{g.Database, g.User, g.MonitorUser} {
		if !identRE.MatchString(id) {
			return fmt.Errorf("galera: %q is not a valid SQL identifier", id)
		}
	}
	for _, pw := range []string{g.Password, g.MonitorPassword} {
		if pw == "" || strings.ContainsAny(pw, `'\`) {
			return fmt.Errorf("galera: a password is empty or contains a quote or backslash")
		}
	}
	return nil
}

// EnsureSite creates (idempotently) the WordPress database, its user and the
// monitor user the controller and router use for health checks. Passwords are
// set every time, so a rotated secret takes effect on the next up.
func EnsureSite(ctx context.Context, c MemberConfig, bin Binaries, g Grant) error {
	if err := g.Validate(); err != nil {
		return err
	}
	sql := fmt.Sprintf(`CREATE DATABASE IF NOT EXISTS %[1]s CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '%[2]s'@'%%' IDENTIFIED BY '%[3]s';
ALTER USER '%[2]s'@'%%' IDENTIFIED BY '%[3]s';
GRANT ALL PRIVILEGES ON %[1]s.* TO '%[2]s'@'%%';
CREATE USER IF NOT EXISTS '%[4]s'@'%%' IDENTIFIED BY '%[5]s';
ALTER USER '%[4]s'@'%%' IDENTIFIED BY '%[5]s';
GRANT PROCESS, REPLICATION CLIENT ON *.* TO '%[4]s'@'%%';
FLUSH PRIVILEGES;
`, "`"+g.Database+"`", g.User, g.Password, g.MonitorUser, g.MonitorPassword)
	if _, err := RootSQL(ctx, c, bin, sql); err != nil {
		return err
	}
	return nil
}
