// The public headers compile as C++ and link with C linkage.
#include <conc.h>

#include <cstdio>

int main() {
  std::printf("consumer (C++): libconc %s, %s\n", conc_version_string(),
              conc_strerror(CONC_EFULL));
  return 0;
}
