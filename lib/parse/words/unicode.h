/*
 * Internal: the little Unicode the parse layer needs to behave like Go
 * (buildkit, patternmatcher): UTF-8 decoding, unicode.IsSpace,
 * unicode.IsLetter, unicode.IsDigit.
 */
#ifndef IB_PARSE_WORDS_UNICODE_H
#define IB_PARSE_WORDS_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define IB_UNICODE_INVALID 0xFFFDu

/*
 * Decode the character at `s` (`len` > 0 bytes available). Returns its
 * length in bytes (1 to 4). A byte that does not start a valid UTF-8
 * sequence is one character of length 1 decoded as U+FFFD, as in Go.
 */
size_t ib_parse__u_decode(const char *s, size_t len, uint32_t *cp);

/* Go's unicode.IsSpace, unicode.IsLetter, unicode.IsDigit. */
int ib_parse__u_is_space(uint32_t cp);
int ib_parse__u_is_letter(uint32_t cp);
int ib_parse__u_is_digit(uint32_t cp);

/*
 * Go's strings.TrimSpace on `s[0..*len)`: returns the start of the trimmed
 * text and sets *len to its length.
 */
const char *ib_parse__u_trim_space(const char *s, size_t *len);

#endif
