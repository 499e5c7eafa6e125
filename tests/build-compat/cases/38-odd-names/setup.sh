# Names that need PAX headers or quoting: long paths, spaces, UTF-8, a leading dash.
long=$(printf 'n%.0s' $(seq 1 130))
mkdir -p "names/with space/$long" names/empty
echo a > "names/with space/$long/$(printf 'f%.0s' $(seq 1 120))"
printf 'utf8\n' > "names/caf$(printf '\303\251').txt"
echo dash > names/-dash
echo star > 'names/st*r[1]'
