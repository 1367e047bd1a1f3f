// libpng's simplified read/write API.
#include <png.h>
