using System.Runtime;
using MLNet.Contrastive.Runtime;

namespace MLNet.Contrastive.Tests.Runtime;

[NonParallelizable]
public class CollectionPauseTests
{
    [Test]
    public void AnotherThreadsAllocationsTriggerNoCollectionDuringAPause()
    {
        using (CollectionPause.Begin())
        {
            var before = GC.CollectionCount(0);
            // 16 MB from another thread: without the pause this is several gen-0 collections.
            var allocated = Task.Run(() => Enumerable.Range(0, 4096).Sum(_ => new byte[4096].Length)).Result;
            Assert.That(allocated, Is.EqualTo(16 << 20));
            Assert.That(GC.CollectionCount(0), Is.EqualTo(before));
            Assert.That(GCSettings.LatencyMode, Is.EqualTo(GCLatencyMode.NoGCRegion));
        }
        Assert.That(GCSettings.LatencyMode, Is.Not.EqualTo(GCLatencyMode.NoGCRegion));
    }

    [Test]
    public void AllocatingPastTheBudgetEndsThePauseAndTheNextOneStarts()
    {
        using (CollectionPause.Begin())
        {
            var keep = new List<byte[]>();
            for (var i = 0; i < 96; i++) keep.Add(new byte[1 << 20]);
            Assert.That(GCSettings.LatencyMode, Is.Not.EqualTo(GCLatencyMode.NoGCRegion));
        }
        using (CollectionPause.Begin())
            Assert.That(GCSettings.LatencyMode, Is.EqualTo(GCLatencyMode.NoGCRegion));
    }

    [Test]
    public void NestedPauseLeavesTheOuterOneRunning()
    {
        using (CollectionPause.Begin())
        {
            using (CollectionPause.Begin()) { }
            Assert.That(GCSettings.LatencyMode, Is.EqualTo(GCLatencyMode.NoGCRegion));
        }
        Assert.That(GCSettings.LatencyMode, Is.Not.EqualTo(GCLatencyMode.NoGCRegion));
    }

    [Test]
    public void AnotherThreadsPauseEndingLeavesThisOneRunning()
    {
        using (CollectionPause.Begin())
        {
            // A pause on another thread that begins and ends inside this one (the region is one per process).
            Task.Run(() => { using (CollectionPause.Begin()) { } }).Wait();
            Assert.That(GCSettings.LatencyMode, Is.EqualTo(GCLatencyMode.NoGCRegion));
        }
        Assert.That(GCSettings.LatencyMode, Is.Not.EqualTo(GCLatencyMode.NoGCRegion));
    }

    [Test]
    public void APauseBegunAfterTheRegionLapsedStartsItAgain()
    {
        using (CollectionPause.Begin())
        {
            var keep = new List<byte[]>();
            for (var i = 0; i < 96; i++) keep.Add(new byte[1 << 20]);
            Assert.That(GCSettings.LatencyMode, Is.Not.EqualTo(GCLatencyMode.NoGCRegion), "the budget ended the region");
            keep.Clear();
            using (CollectionPause.Begin())
                Assert.That(GCSettings.LatencyMode, Is.EqualTo(GCLatencyMode.NoGCRegion));
            Assert.That(GCSettings.LatencyMode, Is.EqualTo(GCLatencyMode.NoGCRegion), "the outer pause still holds it");
        }
        Assert.That(GCSettings.LatencyMode, Is.Not.EqualTo(GCLatencyMode.NoGCRegion));
    }
}
