//! Per-OS code: TUN devices, routes, socket marking. Portable logic here, OS shims below.
