package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// printf writes to w; a failed write to the terminal is not worth an error of its own.
func printf(w io.Writer, format string, a ...any) { _, _ = fmt.Fprintf(w, format, a...) }

// emit prints m as JSON with --json, else calls text.
func (a *app) emit(m proto.Message, text func(w io.Writer)) error {
	if a.json {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode JSON: %w", err)
		}
		printf(a.stdout, "%s\n", b)
		return nil
	}
	text(a.stdout)
	return nil
}

// table writes rows aligned in columns under header.
func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	printf(tw, "%s\n", strings.ReplaceAll(header, " ", "\t"))
	for _, r := range rows {
		printf(tw, "%s\n", strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

func userRows(users []*profilev1.User) [][]string {
	rows := make([][]string, 0, len(users))
	for _, u := range users {
		rows = append(rows, []string{strconv.FormatInt(u.GetId(), 10), u.GetUserName(),
			strings.TrimSpace(u.GetFirstName() + " " + u.GetLastName()), u.GetEmail(), dash(u.GetPhone())})
	}
	return rows
}

const userHeader = "ID USERNAME NAME EMAIL PHONE"

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// millis prints Unix milliseconds as RFC 3339 in UTC, or "-" for 0.
func millis(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}
