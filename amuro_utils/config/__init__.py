"""Settings and where things live: the typed profiles (`profiles`), the repository's folders (`paths`), and the run's
one reporter (`reporter`: what a notebook's kernel is doing, read by run_all.sh's progress line). The bottom layer:
it imports nothing else of the package."""
