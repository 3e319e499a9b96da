module breakfix.dev/netd

go 1.22
