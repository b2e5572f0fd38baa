package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files and directory contents a copy of a data directory leaves out, after
// the list in PostgreSQL's "Making a Base Backup Using the Low Level API"
// (and what pg_basebackup skips). Signal files are left out because the
// copy gets its own.
var (
	skipTopFiles = map[string]bool{
		"postmaster.pid": true, "postmaster.opts": true, "backup_label": true, "tablespace_map": true,
		"backup_manifest": true, "standby.signal": true, "recovery.signal": true,
	}
	// Of these only the directory itself (and, for pg_wal, its
	// subdirectories) is copied from a running server: their files are
	// rebuilt at start, or, for pg_wal, streamed from the upstream.
	liveEmptyDirs = map[string]bool{
		"pg_wal": true, "pg_replslot": true, "pg_dynshmem": true, "pg_notify": true, "pg_serial": true,
		"pg_snapshots": true, "pg_stat_tmp": true, "pg_subtrans": true,
	}
)

// copyDataDir copies the data directory src to dst (which must not exist),
// owned by the server user. live says src belongs to a running server (in
// backup mode): files may then vanish or change while being read — the WAL
// replayed from the backup's start repairs what changed — and the contents
// of liveEmptyDirs are left out. A stopped server's directory is copied
// whole, WAL included.
func (c *Cluster) copyDataDir(ctx context.Context, src, dst string, live bool) error {
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if live && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		parts := strings.Split(rel, string(filepath.Separator))
		name := d.Name()
		switch {
		case len(parts) == 1 && skipTopFiles[name]:
			return nil
		case name == "pg_internal.init" || strings.HasPrefix(name, "pgsql_tmp"):
			return nil
		case live && liveEmptyDirs[parts[0]] && !d.IsDir():
			return nil
		case live && liveEmptyDirs[parts[0]] && parts[0] != "pg_wal" && len(parts) > 1:
			return fs.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link (a tablespace?), which the copy cannot follow", path)
		case d.IsDir():
			info, err := d.Info()
			if err != nil {
				return err
			}
			if err := os.Mkdir(target, info.Mode().Perm()|0o700); err != nil {
				return err
			}
			return c.user.chown(target)
		case d.Type().IsRegular():
			err := c.copyFile(path, target)
			if live && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		default:
			return nil // sockets and the like: nothing a server needs
		}
	})
	if err != nil {
		return fmt.Errorf("pgcluster: copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func (c *Cluster) copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return c.user.chown(dst)
}
