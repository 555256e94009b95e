/* Durable file replacement and the clean-up of what interrupted writers leave behind.
 *
 * Every file yolotrain must not lose (checkpoints, caches, results.csv, args.yaml) is written to
 * "<path>.tmp.<pid>" and then handed to yt_durable_rename: the data is on the disk before the file takes the
 * final name, and the directory entry is on the disk before the call returns. After a crash or a power loss the
 * final name holds either the old file or the whole new one, never an empty or half-written file. */
#ifndef YT_IO_DURABLE_H
#define YT_IO_DURABLE_H

/* The temporary name a writer of path uses: "<path>.tmp.<pid>" (malloc'd; NULL + yt_error when out of memory).
 * yt_remove_stale_temps recognises these names. */
char *yt_temp_path(const char *path);

/* fsync(tmp), rename(tmp, path), fsync(directory of path). On failure tmp is removed and -1 returned (yt_error
 * names both paths); path is then untouched.
 * Crash testing: with YT_CHAOS_KILL=<text>[:<n>] in the environment, the n-th (default first) call whose path
 * contains <text> kills the process with SIGKILL after tmp is complete and before the rename (the moment a power
 * loss or kill -9 inside a save hits). The counter is process-wide; without the variable nothing changes. */
int yt_durable_rename(const char *tmp, const char *path);

/* 1 when name is "<base>.tmp.<pid>" or "<base>.old.<pid>" (what an interrupted writer leaves) and that process
 * no longer exists; 0 otherwise (other names, this process, live processes). */
int yt_is_stale_temp(const char *name);

/* Removes the "<name>.tmp.<pid>" / "<name>.old.<pid>" files in dir whose writer process no longer exists (a killed
 * run's half-written checkpoints). Files of live processes and of this one are kept. Returns the number removed, or -1
 * when dir cannot be read. */
int yt_remove_stale_temps(const char *dir);

#endif
