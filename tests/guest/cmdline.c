/* In-place tokenizer for the command line. */
#include "guest.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/*
 * Split s in place at sep (or at runs of white space when sep is ' ').
 * Surrounding white space is trimmed, empty fields are dropped.
 * Returns the number of fields stored in out (at most max).
 */
int split(char *s, char sep, char **out, int max)
{
	int n = 0;
	while (*s && n < max) {
		while (is_space(*s))
			s++;
		if (!*s)
			break;
		char *start = s;
		while (*s && (sep == ' ' ? !is_space(*s) : *s != sep))
			s++;
		char *end = s;
		if (*s)
			*s++ = 0;
		while (end > start && is_space(end[-1]))
			*--end = 0;
		if (end > start)
			out[n++] = start;
	}
	return n;
}
