using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MLNet.Contrastive.Tests.Runtime;

/// <summary>
/// TorchSharp 0.107 frees an implicitly converted Scalar (the 2 in <c>x.pow(2)</c>, the 1e-12 in <c>x + 1e-12</c>) in a
/// finalizer while the native call may still read it (dotnet/TorchSharp#1434). Training steps run in a collection pause;
/// code that runs outside one (embedding, evaluation, export, data, models, stages, reports) must hold each Scalar in a
/// <c>using</c> local or a field, which keeps it alive past the call. This test reads the library's source with Roslyn
/// and lists every place that does not.
/// </summary>
public class ScalarLifetimeTests
{
    /// <summary>Folders of src/MLNet.Contrastive whose code runs outside a training step's collection pause.</summary>
    private static readonly string[] OutsideSteps = ["Data", "Models", "Metrics", "Evaluation", "Onnx", "Stages", "Reporting", "Runtime", "Selection"];

    [Test]
    public void CodeOutsideTrainingStepsHoldsEveryScalarPastItsCall()
    {
        var source = Path.Combine(TestData.RepositoryRoot, "src", "MLNet.Contrastive");
        var options = new CSharpParseOptions(LanguageVersion.Preview);
        var trees = Directory.GetFiles(source, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), options, f)).ToList();
        // The SDK's implicit global usings (ImplicitUsings=enable).
        trees.Add(CSharpSyntaxTree.ParseText(string.Concat(new[] { "System", "System.IO", "System.Linq", "System.Collections.Generic", "System.Net.Http", "System.Threading", "System.Threading.Tasks" }
            .Select(n => $"global using {n};")), options));
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Concat(Directory.GetFiles(TestContext.CurrentContext.TestDirectory, "*.dll"))
            .GroupBy(Path.GetFileName).Select(g => g.First())
            .Where(p => !Path.GetFileName(p).StartsWith("MLNet.Contrastive", StringComparison.Ordinal) && IsManaged(p))
            .Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("MLNet.Contrastive", trees, references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Take(5).ToList();
        Assert.That(errors, Is.Empty, "the library's source must compile here for the check to mean anything");

        var scalar = compilation.GetTypeByMetadataName("TorchSharp.Scalar")!;
        var found = new List<string>();
        foreach (var tree in trees.Where(t => OutsideSteps.Any(folder => t.FilePath.StartsWith(Path.Combine(source, folder) + Path.DirectorySeparatorChar, StringComparison.Ordinal))))
        {
            var model = compilation.GetSemanticModel(tree);
            string Where(SyntaxNode node) => $"{Path.GetRelativePath(source, tree.FilePath)}:{node.GetLocation().GetLineSpan().StartLinePosition.Line + 1}: {node}";
            foreach (var node in tree.GetRoot().DescendantNodes())
            {
                // Tensor operators with a number (x * 2, 1 - x) convert it to a Scalar inside TorchSharp.
                if (node is BinaryExpressionSyntax or AssignmentExpressionSyntax
                    && model.GetSymbolInfo(node).Symbol is IMethodSymbol { MethodKind: MethodKind.UserDefinedOperator } op
                    && op.ContainingType.Name == "Tensor" && op.Parameters.Any(p => p.Type.IsValueType))
                    found.Add($"Tensor operator with a number: {Where(node)}");
                if (node is not ExpressionSyntax expression || expression.Parent is MemberAccessExpressionSyntax access && access.Name == expression) continue;
                var type = model.GetTypeInfo(expression);
                if (!SymbolEqualityComparer.Default.Equals(type.ConvertedType, scalar)) continue;
                if (!SymbolEqualityComparer.Default.Equals(type.Type, scalar))
                    found.Add($"implicit Scalar: {Where(expression)}");
                else if (expression.Parent is ArgumentSyntax or BinaryExpressionSyntax
                         && model.GetSymbolInfo(expression).Symbol is not (ILocalSymbol or IFieldSymbol or IParameterSymbol))
                    found.Add($"Scalar argument not held in a variable: {Where(expression)}");
            }
            foreach (var local in tree.GetRoot().DescendantNodes().OfType<LocalDeclarationStatementSyntax>())
                if (local.UsingKeyword == default && model.GetTypeInfo(local.Declaration.Type).Type is { } declared
                    && SymbolEqualityComparer.Default.Equals(declared, scalar))
                    found.Add($"Scalar local without using (it may die before the call ends): {Where(local)}");
        }
        Assert.That(found, Is.Empty, string.Join("\n", found));
    }

    private static bool IsManaged(string path)
    {
        try
        {
            System.Reflection.AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException)
        {
            return false;
        }
    }
}
