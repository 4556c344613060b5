package display

import (
	"strings"

	"github.com/oops-deploy/oops/internal/iostreams"
)

// Style colors the cells an operator looks for first, on a terminal that
// takes colors: what is live and well in green, what failed or is BAD in
// red, what is half-way (refused, installing, a warning) in yellow.
func Style(column, cell string) iostreams.Color {
	switch column {
	case "STATUS": // oops list (release status) and oops doctor (check)
		switch {
		case strings.HasPrefix(cell, "BAD"), cell == "fail":
			return iostreams.Red
		case strings.Contains(cell, "unverified"), strings.Contains(cell, "installing"), cell == "warn":
			return iostreams.Yellow
		case strings.HasPrefix(cell, "LIVE"), cell == "ok":
			return iostreams.Green
		}
	case "RESULT": // oops history
		switch {
		case strings.HasPrefix(cell, "failed"):
			return iostreams.Red
		case strings.HasPrefix(cell, "refused"):
			return iostreams.Yellow
		}
	case "ROLE": // oops status
		if strings.HasPrefix(cell, "live") {
			return iostreams.Green
		}
	case "HEALTH":
		switch {
		case cell == "unhealthy", strings.Contains(cell, "("): // "1/2 InService (i-1 OutOfService)"
			return iostreams.Red
		case cell == "healthy", strings.HasSuffix(cell, "InService"):
			return iostreams.Green
		}
	}
	return ""
}
