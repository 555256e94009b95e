/* Where a dataset's files are: growable string lists, the image files under folders and list files, and the
 * label file of an image (Ultralytics' img2label_paths). Errors: NULL or -1 with yt_error. */
#ifndef YT_DATA_LISTING_H
#define YT_DATA_LISTING_H

#include "core/error.h"

typedef struct {
    char **v;
    int n, cap;
} yt_strlist;

int yt_strlist_push(yt_strlist *l, const char *s);
int yt_strlist_pushf(yt_strlist *l, const char *fmt, ...) YT_PRINTF(2, 3);
void yt_strlist_free(yt_strlist *l);

/* Image files under each path: a folder (recursive), a .txt file listing images (relative "./x" entries
 * resolved against the list's folder), or an image file. Sorted, extensions bmp jpeg jpg mpo png tif tiff
 * webp (case-insensitive). Error when a path does not exist or nothing is found. */
int yt_data_list_images(const char *const *paths, int npaths, yt_strlist *out);

/* ".../images/x/a.jpg" -> ".../labels/x/a.txt" (the last "/images/" is replaced). Caller frees. */
char *yt_data_label_path(const char *im_file);

#endif
