/*
 * Word expansion (ENV, ARG, COPY... values): `$x`, `${x:-w}`, `${x#p}`,
 * `${x//p/r}`, quotes, both escape characters. The first byte picks the
 * flags and the escape character; the rest is the word, expanded both as
 * one string and as a word list, against a small environment.
 */
#include "fuzz.h"
#include "imagebuild/parse.h"

static int lookup(const char *name, int found, void *payload)
{
	(void)found;
	IB_FUZZ_CHECK(name != NULL);
	(*(size_t *)payload)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const char *const env[] = {
		"x=hello", "e=", "sp=a b  c", "u=\xc3\xa9t\xc3\xa9", "star=*", "q='\"", "path=/usr/local/bin:/usr/bin",
		"novalue", "x=again", NULL
	};
	size_t looked = 0;
	ib_expand_options o = IB_EXPAND_OPTIONS_INIT;
	o.env = (data[0] & 8) ? NULL : env;
	o.escape = (data[0] & 16) ? '`' : 0;
	o.flags = data[0] & 7;
	o.lookup = (data[0] & 32) ? lookup : NULL;
	o.payload = &looked;
	char *word = ib_fuzz_cstr(data + 1, size - 1);
	ib_buf out = IB_BUF_INIT;
	if (ib_expand_word(&out, word, &o) == 0)
		IB_FUZZ_CHECK(out.size == 0 || out.ptr[out.size] == '\0');
	ib_buf_dispose(&out);
	ib_strarray words = IB_STRARRAY_INIT;
	if (ib_expand_words(&words, word, &o) == 0) {
		for (size_t i = 0; i < words.count; i++)
			IB_FUZZ_CHECK(words.strings[i] && words.strings[i][0]);
	}
	ib_strarray_dispose(&words);
	free(word);
	return 0;
}
