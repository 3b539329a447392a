# weft_require.m4 - one macro for every required dependency of weft.
#
# Each dependency is found the same way, so that a Debian machine and an HPC
# module environment both work and every failure says what to install:
#   1. --with-NAME=DIR, when the dependency offers it: DIR/include, DIR/lib;
#   2. else VAR_CFLAGS / VAR_LIBS from the environment, when VAR_LIBS is set;
#   3. else the pkg-config module, when there is one and it is installed;
#   4. else the default libraries on the compiler's own search paths.
# Then a test program is compiled and linked against what was found.

# WEFT_REQUIRE(VAR, DESCRIPTION, DEBIAN-PACKAGES, PKG-CONFIG-MODULE,
#              DEFAULT-LIBS, PROLOGUE, BODY, [WITH-NAME])
# ---------------------------------------------------------------------
# On success appends VAR_CFLAGS to WEFT_DEPS_CPPFLAGS and VAR_LIBS to
# WEFT_DEPS_LIBS; otherwise stops configure with a message that names
# DEBIAN-PACKAGES. A caller may preset VAR_CFLAGS (weft_netcdf.m4 does, to
# put a probed include folder first). WITH-NAME must be a shell word.
AC_DEFUN([WEFT_REQUIRE], [
AC_ARG_VAR([$1][_CFLAGS], [C++ preprocessor flags for $2])
AC_ARG_VAR([$1][_LIBS], [linker flags for $2])
m4_ifval([$8], [
AC_ARG_WITH([$8],
  [AS_HELP_STRING([--with-$8=DIR], [$2 installed under DIR (DIR/include, DIR/lib)])])
weft_with_dir=$with_$8
weft_hint="pass --with-$8=DIR or "
], [
weft_with_dir=
weft_hint=
])
AS_IF([test "x$weft_with_dir" = xno],
  [AC_MSG_ERROR([$2 is required: --without-$8 is not possible])])

AC_MSG_CHECKING([for $2])
AS_IF([test -n "$weft_with_dir" && test "x$weft_with_dir" != xyes],
  [$1_CFLAGS="-I$weft_with_dir/include"
   $1_LIBS="-L$weft_with_dir/lib $5"
   weft_found_by="--with-$8=$weft_with_dir"],
  [test -n "$$1_LIBS"],
  [weft_found_by="$1_CFLAGS and $1_LIBS"],
  [m4_ifval([$4], [$PKG_CONFIG --exists '$4' 2>/dev/null], [false])],
  [$1_CFLAGS="$$1_CFLAGS `$PKG_CONFIG --cflags '$4'`"
   $1_LIBS=`$PKG_CONFIG --libs '$4'`
   weft_found_by="pkg-config $4"],
  [$1_LIBS="$5"
   weft_found_by="the compiler's default paths"])

weft_save_CPPFLAGS=$CPPFLAGS
weft_save_LIBS=$LIBS
CPPFLAGS="$CPPFLAGS $$1_CFLAGS"
LIBS="$$1_LIBS $LIBS"
AC_LINK_IFELSE([AC_LANG_PROGRAM([$6], [$7])],
  [AC_MSG_RESULT([yes, by $weft_found_by])],
  [AC_MSG_RESULT([no])
   AC_MSG_ERROR([$2 is missing or unusable (looked by $weft_found_by).
  On Debian: apt-get install $3
  Elsewhere: ${weft_hint}set $1_CFLAGS and $1_LIBS. config.log has the compiler's message.])])
CPPFLAGS=$weft_save_CPPFLAGS
LIBS=$weft_save_LIBS
WEFT_DEPS_CPPFLAGS="$WEFT_DEPS_CPPFLAGS $$1_CFLAGS"
WEFT_DEPS_LIBS="$WEFT_DEPS_LIBS $$1_LIBS"
])
