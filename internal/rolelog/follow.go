package rolelog

import (
	"bytes"
	"io"
	"os"
	"time"
)

// Follower reads what was added to a set of logs since it last looked.
type Follower struct {
	Loc *time.Location

	files map[string]*followed // by path
}

type followed struct {
	off     int64
	partial []byte // an unfinished last line
	prev    time.Time
}

// maxRead bounds what one Poll reads from one log.
const maxRead = 4 << 20

// Poll returns the complete lines added to srcs since the last Poll (the
// whole log at the first), merged by time. A log that shrank (rotated,
// truncated) is read again from its start.
func (f *Follower) Poll(srcs []Source) []Line {
	if f.files == nil {
		f.files = map[string]*followed{}
	}
	loc := f.Loc
	if loc == nil {
		loc = time.Local
	}
	var logs [][]Line
	for _, s := range srcs {
		st := f.files[s.Path]
		if st == nil {
			st = &followed{}
			f.files[s.Path] = st
		}
		logs = append(logs, st.read(s, loc))
	}
	return Merge(logs...)
}

func (st *followed) read(s Source, loc *time.Location) []Line {
	file, err := os.Open(s.Path)
	if err != nil {
		return nil
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil
	}
	if fi.Size() < st.off {
		st.off, st.partial = 0, nil
	}
	if fi.Size() == st.off {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(file, st.off, fi.Size()-st.off), maxRead))
	if err != nil {
		return nil
	}
	st.off += int64(len(b))
	b = append(st.partial, b...)
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		st.partial = b
		return nil
	}
	st.partial = append([]byte(nil), b[end+1:]...)
	var out []Line
	for _, text := range bytes.Split(b[:end], []byte{'\n'}) {
		if len(text) > maxLine {
			text = text[:maxLine]
		}
		out = append(out, line(string(text), s.Name, &st.prev, loc))
	}
	return out
}
