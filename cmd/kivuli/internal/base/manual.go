package base

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Annotations of a command that its manual page prints.
const (
	AnnSynopsis    = "synopsis"    // the SYNOPSIS lines; default "kivuli " + Use
	AnnExit        = "exit"        // EXIT STATUS lines beyond the shared ones
	AnnExitOnly    = "exit-only"   // EXIT STATUS lines instead of the shared ones
	AnnEnvironment = "environment" // the ENVIRONMENT section
	AnnSeeAlso     = "see-also"    // the SEE ALSO section
)

// groupSource marks the credential-source flags, printed in a section of
// their own.
const groupSource = "source"

// ManualWidth is the width the manual is wrapped to.
const ManualWidth = 80

// WriteManual writes cmd's manual page, in the sections of a man page:
// NAME, SYNOPSIS, DESCRIPTION, OPTIONS, CREDENTIAL SOURCE, EXAMPLES,
// ENVIRONMENT, EXIT STATUS, SEE ALSO.
func WriteManual(w io.Writer, cmd *cobra.Command) {
	var b strings.Builder
	section := func(title, body string) {
		body = strings.TrimRight(body, "\n")
		if body == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(title + "\n")
		for line := range strings.SplitSeq(body, "\n") {
			if line == "" {
				b.WriteByte('\n')
				continue
			}
			b.WriteString("    " + line + "\n")
		}
	}
	section("NAME", cmd.CommandPath()+" - "+cmd.Short)
	synopsis := cmd.Annotations[AnnSynopsis]
	if synopsis == "" {
		synopsis = cmd.UseLine()
	}
	section("SYNOPSIS", synopsis)
	section("DESCRIPTION", cmd.Long)
	own, src := pflag.NewFlagSet("own", pflag.ContinueOnError), pflag.NewFlagSet("source", pflag.ContinueOnError)
	own.SortFlags, src.SortFlags = false, false
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if len(f.Annotations[groupSource]) > 0 {
			src.AddFlag(f)
		} else {
			own.AddFlag(f)
		}
	})
	section("OPTIONS", flagUsages(own))
	section("CREDENTIAL SOURCE", flagUsages(src))
	section("EXAMPLES", cmd.Example)
	section("ENVIRONMENT", cmd.Annotations[AnnEnvironment])
	exit := cmd.Annotations[AnnExitOnly]
	if exit == "" {
		exit = ExitStatusText
		if extra := cmd.Annotations[AnnExit]; extra != "" {
			exit += "\n" + extra
		}
	}
	section("EXIT STATUS", exit)
	seeAlso := cmd.Annotations[AnnSeeAlso]
	if seeAlso == "" && cmd.HasParent() {
		seeAlso = "kivuli(1): kivuli --help"
	}
	section("SEE ALSO", seeAlso)
	fmt.Fprint(w, b.String())
}

// NoValue is the NoOptDefVal of a flag whose value may be left out (curl
// --presign): the manual shows such a value as [NAME].
const NoValue = "default"

var optionalValueRE = regexp.MustCompile(`([A-Z]+)\[=` + regexp.QuoteMeta(NoValue) + `\]`)

// flagUsages lists the flags of fs, wrapped to the manual's width.
func flagUsages(fs *pflag.FlagSet) string {
	var lines []string
	usages := fs.FlagUsagesWrapped(ManualWidth - 4)
	// pflag shows an optional value as NAME[=default]; a man page as [NAME].
	usages = optionalValueRE.ReplaceAllStringFunc(usages, func(m string) string {
		sub := optionalValueRE.FindStringSubmatch(m)
		return fmt.Sprintf("%-*s", len(m), "["+sub[1]+"]")
	})
	for line := range strings.SplitSeq(usages, "\n") {
		lines = append(lines, strings.TrimPrefix(strings.TrimRight(line, " "), "  "))
	}
	return strings.Join(lines, "\n")
}
