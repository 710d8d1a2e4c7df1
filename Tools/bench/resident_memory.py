"""The peer scripts' peak resident set, measured as Temper's ResidentMemory measures its own."""
import resource


def reset_peak_rss():
    """Starts a new VmHWM at the current resident set (Linux); elsewhere the peak covers the process."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb():
    """This process's peak resident set (VmHWM). Not ru_maxrss where VmHWM exists: Linux carries
    ru_maxrss over from the parent across fork and exec, so a peer started by Temper would report
    Temper's peak whenever Temper's is the higher one."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
