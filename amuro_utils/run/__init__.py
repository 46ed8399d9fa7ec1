"""Running the whole study: run_all.sh's driver with job states, markers, papermill and the progress line (`runner`),
and SLURM job arrays from the same jobs (`slurm`)."""
